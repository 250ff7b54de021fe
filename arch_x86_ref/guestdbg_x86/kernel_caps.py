"""What this VM's x86 kernel offers for guest debugging, read once per vCPU at session setup.

``KVM_CAP_SET_GUEST_DEBUG2`` answers with the control bits the kernel accepts (x86:
``KVM_GUESTDBG_VALID_MASK``, 0x001F0003 on kernels with BLOCKIRQ,
docs/reference/kvm-debug-abi.md §1.1, §1.4); older
kernels answer 0, and then only the classic bits (ENABLE, SINGLESTEP, USE_SW_BP, USE_HW_BP) are
assumed, as QEMU does when it probes the cap (``kvm_update_guest_debug``: NOIRQ stepping only
when the mask has BLOCKIRQ). ``KVM_CAP_EXCEPTION_PAYLOAD`` decides how a #DB's DR6 reaches the
guest (see :mod:`guestdbg_x86.inject`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from guestdbg.capabilities import DebugCapabilities
from guestdbg.kvm.constants import (
    KVM_CAP_DEBUGREGS,
    KVM_CAP_EXCEPTION_PAYLOAD,
    KVM_CAP_SET_GUEST_DEBUG2,
    KVM_CAP_VCPU_EVENTS,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg.points import PointKind
from guestdbg.vcpu import VmHandle

from .abi import KVM_GUESTDBG_BLOCKIRQ, KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP

CLASSIC_CONTROL = (
    KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW_BP
)


@dataclass(frozen=True, slots=True)
class KernelCaps:
    control_mask: int
    """Guest-debug control bits the kernel accepts."""
    vcpu_events: bool
    debugregs: bool
    exception_payload: bool

    @property
    def blockirq(self) -> bool:
        return bool(self.control_mask & KVM_GUESTDBG_BLOCKIRQ)


def probe(vm: VmHandle) -> KernelCaps:
    mask = vm.check_extension(KVM_CAP_SET_GUEST_DEBUG2)
    return KernelCaps(
        control_mask=mask if mask > 0 else CLASSIC_CONTROL,
        vcpu_events=vm.check_extension(KVM_CAP_VCPU_EVENTS) > 0,
        debugregs=vm.check_extension(KVM_CAP_DEBUGREGS) > 0,
        exception_payload=vm.check_extension(KVM_CAP_EXCEPTION_PAYLOAD) > 0,
    )


def debug_caps(static: DebugCapabilities, kernel: KernelCaps) -> DebugCapabilities:
    """The core's capabilities as this kernel says it offers them (what it really delivers may
    be less: :mod:`guestdbg_x86.host_probe`)."""
    hw = static.hw_breakpoints if kernel.control_mask & KVM_GUESTDBG_USE_HW_BP else 0
    caps = dataclasses.replace(
        static,
        hw_breakpoints=hw,
        hw_watchpoints=hw,
        watch_kinds=static.watch_kinds if hw else frozenset(),
        single_step=bool(kernel.control_mask & KVM_GUESTDBG_SINGLESTEP),
        step_blocks_irqs=kernel.blockirq,
    )
    if not kernel.control_mask & KVM_GUESTDBG_USE_SW_BP:
        caps = caps.refusing(
            {
                PointKind.SW_BREAK: "this kernel does not accept KVM_GUESTDBG_USE_SW_BP "
                f"(KVM_CAP_SET_GUEST_DEBUG2 is {kernel.control_mask:#x}): use hbreak"
            }
        )
    return caps
