"""KVM_SET_GUEST_DEBUG on the emulated host: x86.c ``kvm_arch_vcpu_ioctl_set_guest_debug``.

INJECT_DB / INJECT_BP queue #DB / #BP (EBUSY while an exception is already queued);
``guest_debug`` takes ``control`` as given, or 0 when ENABLE is clear; with USE_HW_BP
``debugreg[0..3]`` and ``debugreg[7]`` become the effective DR0-3/DR7, otherwise the guest's own
registers stay in effect (``kvm_update_dr7``).
"""

from __future__ import annotations

import errno

from guestdbg.errors import KernelError
from guestdbg.kvm.constants import KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP

from .. import abi
from .dr_arming import Effective
from .events import EventState

DB_VECTOR, BP_VECTOR = 1, 3
_GD = "struct kvm_guest_debug"


class GuestDebugModel:
    def __init__(self, events: EventState) -> None:
        self.events = events
        self.guest_debug = 0
        self.host_db: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.host_dr7 = 0
        lay = abi.layout()
        self._size = lay.sizeof(_GD)
        self._control = lay.field(_GD, "control")
        self._debugreg = [lay.field(_GD, "arch", "debugreg", n) for n in range(8)]

    def set(self, buf: bytes) -> None:
        if len(buf) != self._size:
            raise KernelError("KVM_SET_GUEST_DEBUG", errno.EFAULT)
        control = self._control.get(buf)
        if control & (abi.KVM_GUESTDBG_INJECT_DB | abi.KVM_GUESTDBG_INJECT_BP):
            if self.events.busy:
                raise KernelError("KVM_SET_GUEST_DEBUG", errno.EBUSY)
            inject_db = control & abi.KVM_GUESTDBG_INJECT_DB
            self.events.queue(DB_VECTOR if inject_db else BP_VECTOR)
        self.guest_debug = control if control & KVM_GUESTDBG_ENABLE else 0
        if self.guest_debug & abi.KVM_GUESTDBG_USE_HW_BP:
            db = [self._debugreg[n].get(buf) for n in range(4)]
            self.host_db = (db[0], db[1], db[2], db[3])
            self.host_dr7 = self._debugreg[7].get(buf)

    @property
    def singlestep(self) -> bool:
        return bool(self.guest_debug & KVM_GUESTDBG_SINGLESTEP)

    @property
    def use_hw_bp(self) -> bool:
        return bool(self.guest_debug & abi.KVM_GUESTDBG_USE_HW_BP)

    @property
    def use_sw_bp(self) -> bool:
        return bool(self.guest_debug & abi.KVM_GUESTDBG_USE_SW_BP)

    @property
    def db_exits(self) -> bool:
        """vmx ``handle_exception_nmi``: a #DB goes to userspace only with these."""
        return bool(self.guest_debug & (KVM_GUESTDBG_SINGLESTEP | abi.KVM_GUESTDBG_USE_HW_BP))

    def effective(self, guest_db: tuple[int, int, int, int], guest_dr7: int) -> Effective:
        if self.use_hw_bp:
            return Effective(self.host_db, self.host_dr7, host=True)
        return Effective(guest_db, guest_dr7, host=False)
