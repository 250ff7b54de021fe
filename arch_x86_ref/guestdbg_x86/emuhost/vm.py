"""One emulated x86-64 VM: guest RAM, vCPUs, and the capabilities an x86 kernel reports.

``check_extension`` answers as a current x86 kernel does for what the model implements
(SET_GUEST_DEBUG2 = ``KVM_GUESTDBG_VALID_MASK``, EXCEPTION_PAYLOAD, VCPU_EVENTS, DEBUGREGS);
``kernel_caps`` overrides answers to stand in for an older kernel (e.g. no EXCEPTION_PAYLOAD, or
a SET_GUEST_DEBUG2 without BLOCKIRQ), so both paths of a VMM can be exercised. KVM_ENABLE_CAP
accepts EXCEPTION_PAYLOAD when it is offered, and nothing else (EINVAL).

Read-only memory slots are modelled as an x86 kernel has them (docs/reference/kvm-debug-abi.md
§11.2): KVM_CAP_READONLY_MEM answers 1, KVM_MEM_READONLY is accepted, and a guest store into a
read-only slot leaves KVM_RUN as KVM_EXIT_MMIO with the slot unchanged
(:mod:`guestdbg_x86.emuhost.mmio`). Dirty logging is not modelled, and the VM says so as a
kernel without it would: KVM_MEM_LOG_DIRTY_PAGES is EINVAL. An x86 kernel has it; that is a gap
of this model, not of the kernel.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

from guestdbg.emuhost.vm import EmulatedVm
from guestdbg.errors import InvalidRequest, KernelError
from guestdbg.kvm import constants as C

from .. import abi
from .vcpu import EmuX86Vcpu

KVM_GUESTDBG_VALID_MASK = 0x001F0003
"""``arch/x86/include/asm/kvm_host.h``: ENABLE|SINGLESTEP|USE_HW_BP|USE_SW_BP|INJECT_BP|
INJECT_DB|BLOCKIRQ."""

DEFAULT_CAPS: dict[int, int] = {
    C.KVM_CAP_USER_MEMORY: 1,
    C.KVM_CAP_SET_GUEST_DEBUG: 1,
    C.KVM_CAP_VCPU_EVENTS: 1,
    C.KVM_CAP_DEBUGREGS: 1,
    C.KVM_CAP_X86_ROBUST_SINGLESTEP: 1,
    C.KVM_CAP_EXCEPTION_PAYLOAD: 1,
    C.KVM_CAP_SET_GUEST_DEBUG2: KVM_GUESTDBG_VALID_MASK,
    C.KVM_CAP_READONLY_MEM: 1,
}


class EmuX86Vm(EmulatedVm):
    def __init__(
        self, ram_size: int, smp: int = 1, kernel_caps: Mapping[int, int] | None = None
    ) -> None:
        if not 1 <= smp <= 8:
            raise InvalidRequest(f"the emulated x86 host runs 1 to 8 vCPUs, not {smp}")
        super().__init__(
            abi.layout(), {**DEFAULT_CAPS, **(kernel_caps or {})}, slot_flags=C.KVM_MEM_READONLY
        )
        self.memory.add_slot(0, ram_size)
        self.payload_enabled = False
        """KVM_CAP_EXCEPTION_PAYLOAD is enabled (``kvm->arch.exception_payload_enabled``)."""
        self._add_vcpus([EmuX86Vcpu(self, n) for n in range(smp)])

    def enable_cap(self, cap: int, *args: int) -> None:
        if cap != C.KVM_CAP_EXCEPTION_PAYLOAD or not self.caps.get(cap):
            raise KernelError("KVM_ENABLE_CAP", errno.EINVAL, f"capability {cap}")
        self.payload_enabled = bool(args[0]) if args else False
