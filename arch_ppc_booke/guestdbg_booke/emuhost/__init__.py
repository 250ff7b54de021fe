"""An emulated e500 KVM host: Unicorn executes the guest, a model of Linux BookE KVM does the rest.

Cores: e500mc (BookE-HV), e500v2 (BookE-PR), and the 64-bit e5500 and e6500 under the same
BookE-HV model on a 64-bit host kernel (``board.WIDTH``: 64-bit registers, EPCR, MSR[CM] on
interrupt delivery, AltiVec on e6500).

``EmulatedBookeVm`` implements ``guestdbg.vcpu.VmHandle`` and its vCPUs ``VcpuHandle``, byte for
byte in the kernel's structures, so everything above runs unchanged on it. Module map:

* ``engine`` - Unicorn: execution, address-limited code hooks, page protection, steps;
  ``cpu_table`` - the guarded repair of Unicorn 2.1.4's 64-bit CPU table.
* ``facility`` - the e500 debug facility (IAC/DAC/IC/BRT/TRAP, DBSR, MSR[DE] gating).
* ``kvm_state`` - the kernel's per-vCPU state; ``kvm_msr``, ``kvm_irq``, ``kvm_debug``,
  ``kvm_spr``, ``kvm_emulate``, ``kvm_exit`` - what the kernel does with it; ``kvm_uapi`` - the
  regs/sregs/ONE_REG structures; ``run_area`` - ``kvm_run``.
* ``guest_tlb``, ``isa``, ``memory``, ``board``, ``loader`` - the guest TLB, instruction fields,
  shared RAM, the ppce500 boot layout, ELF loading.
* ``vcpu``, ``vm`` - the ioctl surfaces.
"""

from __future__ import annotations

from .board import HOSTIO_BASE, HOSTIO_CHECKPOINT, HOSTIO_DONE, HOSTIO_SIZE
from .vcpu import EmulatedBookeVcpu
from .vm import EmulatedBookeVm

__all__ = [
    "HOSTIO_BASE",
    "HOSTIO_CHECKPOINT",
    "HOSTIO_DONE",
    "HOSTIO_SIZE",
    "EmulatedBookeVcpu",
    "EmulatedBookeVm",
]
