"""Guest debug in the kernel: KVM_SET_GUEST_DEBUG, the debug exit, the guest's debug SPRs.

* ``set_guest_debug`` is ``kvm_arch_vcpu_ioctl_set_guest_debug`` (booke.c,
  docs/reference/kvm-debug-abi.md): only
  ``bp[0..KVMPPC_BOOKE_IAC_NUM + KVMPPC_BOOKE_DAC_NUM - 1]`` are read, BREAKPOINT entries take the
  next IAC and the others the next DAC, a third IAC or DAC or an unknown type bit is -EINVAL - and
  nothing is rolled back: ``guest_debug``, MSRP[DEP] and the DBCR0 built so far stay.
* ``handle_debug`` is ``kvmppc_handle_debug`` (docs/reference/kvm-debug-abi.md): with
  ``guest_debug == 0`` the event is the guest's and becomes a debug (or, for a trap with MSR[DE]
  clear, program) interrupt; otherwise it exits with status BREAKPOINT (address = PC), WATCH_WRITE
  or WATCH_READ (write wins; address = the configured DAC value) or 0 (single-step, software
  breakpoint).
* ``mtspr``/``mfspr`` are the debug cases of ``kvmppc_booke_emulate_mtspr``/``mfspr``
  (docs/reference/kvm-debug-abi.md): while userspace debugs, writes are dropped; DBCR0 reads
  show EDM; DBSR is write-1-to-clear and dequeues the pending debug interrupt; any other write
  reloads the hardware at once.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from guestdbg.kvm.constants import KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP

from .. import abi, regs
from . import kvm_irq, kvm_msr
from .kvm_state import BOOKE_IRQPRIO_DEBUG, DebugReg, Kvm

KVMPPC_BOOKE_IAC_NUM = 2
KVMPPC_BOOKE_DAC_NUM = 2
_TYPES = abi.KVMPPC_DEBUG_BREAKPOINT | abi.KVMPPC_DEBUG_WATCH_READ | abi.KVMPPC_DEBUG_WATCH_WRITE
_DBCR0_GUEST_MASK = (
    regs.DBCR0_IDM
    | regs.DBCR0_IC
    | regs.DBCR0_BT
    | regs.DBCR0_TIE
    | regs.DBCR0_IAC1
    | regs.DBCR0_IAC2
    | regs.DBCR0_IAC3
    | regs.DBCR0_IAC4
    | regs.DBCR0_DAC1R
    | regs.DBCR0_DAC1W
    | regs.DBCR0_DAC2R
    | regs.DBCR0_DAC2W
)
"""booke_emulate.c's DBCR0 mask (current kernels; older ones listed DAC1W and DAC2W twice and so
dropped the guest's DAC read enables)."""
DEBUG_SPRS = frozenset(
    {
        regs.SPRN_IAC1,
        regs.SPRN_IAC2,
        regs.SPRN_DAC1,
        regs.SPRN_DAC2,
        regs.SPRN_DBCR0,
        regs.SPRN_DBCR1,
        regs.SPRN_DBCR2,
        regs.SPRN_DBSR,
    }
)


def _add_breakpoint(d: DebugReg, addr: int, index: int) -> bool:
    """``kvmppc_booke_add_breakpoint`` (CONFIG_PPC_ADV_DEBUG_IACS = 2 on e500)."""
    if index == 0:
        d.dbcr0 |= regs.DBCR0_IAC1
        d.iac1 = addr
    elif index == 1:
        d.dbcr0 |= regs.DBCR0_IAC2
        d.iac2 = addr
    else:
        return False
    d.dbcr0 |= regs.DBCR0_IDM
    return True


def _add_watchpoint(d: DebugReg, addr: int, typ: int, index: int) -> bool:
    """``kvmppc_booke_add_watchpoint``."""
    if index > 1:
        return False
    read = typ & abi.KVMPPC_DEBUG_WATCH_READ
    write = typ & abi.KVMPPC_DEBUG_WATCH_WRITE
    if index == 0:
        d.dbcr0 |= (regs.DBCR0_DAC1R if read else 0) | (regs.DBCR0_DAC1W if write else 0)
        d.dac1 = addr
    else:
        d.dbcr0 |= (regs.DBCR0_DAC2R if read else 0) | (regs.DBCR0_DAC2W if write else 0)
        d.dac2 = addr
    d.dbcr0 |= regs.DBCR0_IDM
    return True


def set_guest_debug(k: Kvm, control: int, bps: Sequence[tuple[int, int]]) -> int:
    """Returns 0 or a negative errno, like the ioctl handler. ``bps`` is ``arch.bp[]``; the
    addresses land in ``unsigned long`` fields, so a 32-bit host keeps their low 32 bits and a
    64-bit one (e5500, e6500) all 64."""
    a = k.arch
    d = a.dbg_reg
    if not control & KVM_GUESTDBG_ENABLE:
        d.dbcr0 = 0
        a.guest_debug = 0
        kvm_msr.protect_msr(a, regs.MSR_DE, False)
        return 0
    kvm_msr.protect_msr(a, regs.MSR_DE, True)
    a.guest_debug = control
    d.dbcr0 = 0
    if control & KVM_GUESTDBG_SINGLESTEP:
        d.dbcr0 |= regs.DBCR0_IDM | regs.DBCR0_IC
    if a.hv:
        # the guest always runs with MSR.GS=1: events in any MSR.PR (EPCR[DUVD] keeps the host's
        # own code out)
        d.dbcr1 = 0
        d.dbcr2 = 0
    else:
        # the guest always runs with MSR.PR=1: events only in user state
        d.dbcr1 = regs.DBCR1_IAC1US | regs.DBCR1_IAC2US | regs.DBCR1_IAC3US | regs.DBCR1_IAC4US
        d.dbcr2 = regs.DBCR2_DAC1US | regs.DBCR2_DAC2US
    if not control & abi.KVM_GUESTDBG_USE_HW_BP:
        return 0
    b = w = 0
    for n in range(KVMPPC_BOOKE_IAC_NUM + KVMPPC_BOOKE_DAC_NUM):
        addr, typ = bps[n]
        addr &= a.ulong
        if typ == abi.KVMPPC_DEBUG_NONE:
            continue
        if typ & ~_TYPES:
            return -errno.EINVAL
        if typ & abi.KVMPPC_DEBUG_BREAKPOINT:
            ok = _add_breakpoint(d, addr, b)
            b += 1
        else:
            ok = _add_watchpoint(d, addr, typ, w)
            w += 1
        if not ok:
            return -errno.EINVAL
    return 0


def handle_debug(k: Kvm) -> bool:
    """``kvmppc_handle_debug``: True = RESUME_HOST (a KVM_EXIT_DEBUG is in ``kvm_run``)."""
    a = k.arch
    dbsr = a.dbsr
    if a.guest_debug == 0:
        if dbsr & regs.DBSR_IDE:
            dbsr &= ~regs.DBSR_IDE  # "Imprecise debug event is not injected"
            if not dbsr:
                return False
        if dbsr and a.msr & regs.MSR_DE and a.dbg_reg.dbcr0 & regs.DBCR0_IDM:
            kvm_irq.queue(k, BOOKE_IRQPRIO_DEBUG)
        if dbsr & regs.DBSR_TIE and not a.msr & regs.MSR_DE:
            kvm_irq.queue_program(k, regs.ESR_PTR)
        return False
    a.dbsr = 0
    status = 0
    address = k.cpu.pc
    if dbsr & (regs.DBSR_IAC1 | regs.DBSR_IAC2 | regs.DBSR_IAC3 | regs.DBSR_IAC4):
        status |= abi.KVMPPC_DEBUG_BREAKPOINT
    else:
        if dbsr & (regs.DBSR_DAC1W | regs.DBSR_DAC2W):
            status |= abi.KVMPPC_DEBUG_WATCH_WRITE
        elif dbsr & (regs.DBSR_DAC1R | regs.DBSR_DAC2R):
            status |= abi.KVMPPC_DEBUG_WATCH_READ
        if dbsr & (regs.DBSR_DAC1R | regs.DBSR_DAC1W):
            address = a.dbg_reg.dac1
        elif dbsr & (regs.DBSR_DAC2R | regs.DBSR_DAC2W):
            address = a.dbg_reg.dac2
    k.run.exit_debug(address, status)
    return True


def mtspr(k: Kvm, sprn: int, val: int) -> None:
    """A guest write to one of ``DEBUG_SPRS``."""
    a = k.arch
    if a.guest_debug:
        return  # "If userspace is debugging guest then guest can not access debug registers."
    d = a.dbg_reg
    if sprn == regs.SPRN_DBSR:
        a.dbsr &= ~val
        if not a.dbsr & ~regs.DBSR_IDE:
            kvm_irq.dequeue(k, BOOKE_IRQPRIO_DEBUG)
        return
    if sprn == regs.SPRN_IAC1:
        d.iac1 = val
    elif sprn == regs.SPRN_IAC2:
        d.iac2 = val
    elif sprn == regs.SPRN_DAC1:
        d.dac1 = val
    elif sprn == regs.SPRN_DAC2:
        d.dac2 = val
    elif sprn == regs.SPRN_DBCR0:
        d.dbcr0 = val & _DBCR0_GUEST_MASK
    elif sprn == regs.SPRN_DBCR1:
        d.dbcr1 = val & 0xFFFFFFFF  # struct debug_reg's u32 dbcr1, dbcr2
    elif sprn == regs.SPRN_DBCR2:
        d.dbcr2 = val & 0xFFFFFFFF
    k.reload_debug()


def mfspr(k: Kvm, sprn: int) -> int:
    """A guest read of one of ``DEBUG_SPRS``."""
    a = k.arch
    d = a.dbg_reg
    if sprn == regs.SPRN_DBCR0:
        return d.dbcr0 | (regs.DBCR0_EDM if a.guest_debug else 0)
    if sprn == regs.SPRN_DBSR:
        return a.dbsr
    return {
        regs.SPRN_IAC1: d.iac1,
        regs.SPRN_IAC2: d.iac2,
        regs.SPRN_DAC1: d.dac1,
        regs.SPRN_DAC2: d.dac2,
        regs.SPRN_DBCR1: d.dbcr1,
        regs.SPRN_DBCR2: d.dbcr2,
    }[sprn]
