"""The guest MSR as KVM keeps it, and the MSR the hardware really runs the guest with.

* ``set_msr`` is ``kvmppc_set_msr``: the kernel's "full" MSR write (KVM_SET_REGS, interrupt
  delivery, emulated mtmsr/rfi on BookE-PR). On HV it adds MSR_GS; then
  ``kvmppc_vcpu_sync_debug`` forces debug interrupts on while userspace debugs - on HV by setting
  DE in the guest-visible MSR, on PR by setting it only in the shadow MSR and clearing it in the
  guest-visible one. KVM_SET_GUEST_DEBUG itself does not call it: the force takes effect at the
  next full MSR write (QEMU always writes the registers before resuming a stopped vCPU).
* ``guest_write_msr`` is a guest's own mtmsr/rfi/rfci/rfdi. On PR those trap and KVM emulates
  them through ``kvmppc_set_msr``. On HV they run on the hardware in guest state: MSR[GS] stays
  set, and the bits MSRP protects keep their value (DEP while userspace debugs,
  docs/reference/kvm-debug-abi.md; UCLEP/PMMP always, ``kvmppc_core_vcpu_setup``).
* The hardware view: on HV the guest's MSR is the hardware MSR. On PR the hardware runs the guest
  in problem state with IS=DS=1 (``shadow_msr = MSR_USER | MSR_IS | MSR_DS``), so the debug
  facility's user/supervisor and address-space qualifiers see PR=1, IS=DS=1 whatever the guest's
  own mode (a guest's "supervisor only" IAC never fires on BookE-PR).
"""

from __future__ import annotations

from .. import regs
from .kvm_state import VcpuArch

_ENGINE_BITS = regs.MSR_FP | regs.MSR_FE0 | regs.MSR_FE1 | regs.MSR_SPE | regs.MSR_UCLE


def set_msr(arch: VcpuArch, new_msr: int) -> None:
    new_msr &= 0xFFFFFFFF
    if arch.hv:
        new_msr |= regs.MSR_GS
    arch.msr = new_msr
    sync_debug(arch)


def sync_debug(arch: VcpuArch) -> None:
    """``kvmppc_vcpu_sync_debug``."""
    if not arch.hv:
        arch.shadow_de = bool(arch.msr & regs.MSR_DE)
    if arch.guest_debug:
        if arch.hv:
            arch.msr |= regs.MSR_DE
        else:
            arch.shadow_de = True
            arch.msr &= ~regs.MSR_DE


def guest_write_msr(arch: VcpuArch, new_msr: int) -> None:
    if not arch.hv:
        set_msr(arch, new_msr)
        return
    protected = 0
    if arch.shadow_msrp & regs.MSRP_DEP:
        protected |= regs.MSR_DE
    if arch.shadow_msrp & regs.MSRP_UCLEP:
        protected |= regs.MSR_UCLE
    if arch.shadow_msrp & regs.MSRP_PMMP:
        protected |= regs.MSR_PMM
    arch.msr = ((new_msr & ~protected) | (arch.msr & protected) | regs.MSR_GS) & 0xFFFFFFFF


def protect_msr(arch: VcpuArch, bits: int, on: bool) -> None:
    """``kvm_guest_protect_msr``: MSRP on HV; a no-op on PR ("XXX: add similar MSR protection
    for BookE-PR")."""
    if not arch.hv:
        return
    msrp = 0
    if bits & regs.MSR_UCLE:
        msrp |= regs.MSRP_UCLEP
    if bits & regs.MSR_DE:
        msrp |= regs.MSRP_DEP
    if bits & regs.MSR_PMM:
        msrp |= regs.MSRP_PMMP
    arch.shadow_msrp = arch.shadow_msrp | msrp if on else arch.shadow_msrp & ~msrp


def hw_de(arch: VcpuArch) -> bool:
    """MSR[DE] of the MSR the hardware runs the guest with."""
    return bool(arch.msr & regs.MSR_DE) if arch.hv else arch.shadow_de


def hw_pr(arch: VcpuArch) -> bool:
    return bool(arch.msr & regs.MSR_PR) if arch.hv else True


def hw_is(arch: VcpuArch) -> bool:
    return bool(arch.msr & regs.MSR_IS) if arch.hv else True


def hw_ds(arch: VcpuArch) -> bool:
    return bool(arch.msr & regs.MSR_DS) if arch.hv else True


def engine_msr(arch: VcpuArch) -> int:
    """The MSR Unicorn runs with: always problem state (so privileged instructions trap to the
    model), the guest's FP/SPE/UCLE enables (SPE is AltiVec's MSR[SPV] on e6500) and, on the
    64-bit cores, its computation mode MSR[CM]; never DE/EE/CE/ME/GS (the model owns
    interrupts)."""
    if arch.is64:
        return regs.MSR_PR | (arch.msr & (_ENGINE_BITS | regs.MSR_CM))
    return regs.MSR_PR | (arch.msr & _ENGINE_BITS)
