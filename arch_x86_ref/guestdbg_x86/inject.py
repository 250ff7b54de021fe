"""Queueing an exception for the guest through KVM_SET_VCPU_EVENTS, as QEMU's
``kvm_queue_exception`` + ``kvm_put_vcpu_events`` do (docs/reference/kvm-debug-abi.md
§5.3).

Two ways to carry a #DB's DR6, chosen by what the VM has:

* With ``KVM_CAP_EXCEPTION_PAYLOAD`` enabled: ``exception.pending`` with
  ``KVM_VCPUEVENT_VALID_PAYLOAD`` and ``exception_payload``. The payload is in the
  pending-debug-exceptions form (active-low DR6 bits flipped to active-high), because that is
  what x86.c ``kvm_deliver_exception_payload`` applies: ``dr6 |= payload; dr6 ^= payload &
  DR6_ACTIVE_LOW``. QEMU passes the exit's ``dr6`` unconverted, which that formula turns into a
  DR6 with the fixed-1 bits cleared; the kernel source wins here
  (docs/reference/kvm-debug-abi.md §5.4).
* Without it: ``exception.injected`` and the DR6 written first with KVM_SET_DEBUGREGS, computed
  with the same kernel formula from the guest's current DR6 (QEMU writes the value as is, which
  is the same when the old DR6 held nothing sticky).

The other fields of ``kvm_vcpu_events`` (interrupt, NMI, SMM) go back as KVM_GET_VCPU_EVENTS
gave them: ``kvm_vcpu_ioctl_x86_set_vcpu_events`` applies ``interrupt`` and ``nmi.injected``
unconditionally, so leaving them zero would drop an event the kernel had queued.
"""

from __future__ import annotations

from guestdbg.errors import GuestDebugError, UnsupportedByArch
from guestdbg.vcpu import VcpuEventsHandle

from . import abi
from .debugregs import apply_payload, dr6_to_pending
from .guest_dregs import GuestDebugRegs

DB_VECTOR = 1
_EV = "struct kvm_vcpu_events"


class ExceptionInjector:
    """Puts one exception into one vCPU's event state (the vCPU is out of KVM_RUN)."""

    def __init__(self, vcpu: object, dregs: GuestDebugRegs, payload_enabled: bool) -> None:
        self.vcpu = vcpu if isinstance(vcpu, VcpuEventsHandle) else None
        self.dregs = dregs
        self.payload_enabled = payload_enabled
        lay = abi.layout()
        f = lay.field
        self._injected = f(_EV, "exception", "injected")
        self._pending = f(_EV, "exception", "pending")
        self._nr = f(_EV, "exception", "nr")
        self._has_error = f(_EV, "exception", "has_error_code")
        self._error = f(_EV, "exception", "error_code")
        self._has_payload = f(_EV, "exception_has_payload")
        self._payload = f(_EV, "exception_payload")
        self._flags = f(_EV, "flags")

    def queue(self, vector: int, *, dr6: int | None = None, error_code: int | None = None) -> None:
        """Make ``vector`` the vCPU's next event; ``dr6`` is the DR6 value a #DB reports."""
        if self.vcpu is None:
            raise UnsupportedByArch("this vCPU has no KVM_GET/SET_VCPU_EVENTS")
        ev = self.vcpu.get_vcpu_events()
        if self._injected.get(ev) or self._pending.get(ev):
            raise GuestDebugError(
                f"vCPU already has exception {self._nr.get(ev)} queued; #{vector} cannot be "
                "stacked on it from userspace"
            )
        payload = vector == DB_VECTOR and dr6 is not None
        old_dr6: int | None = None
        if payload and not self.payload_enabled:
            assert dr6 is not None
            old_dr6 = self.dregs.read()["dr6"]
            self.dregs.write({"dr6": apply_payload(old_dr6, dr6_to_pending(dr6))})
        self._nr.put(ev, vector)
        self._has_error.put(ev, 1 if error_code is not None else 0)
        self._error.put(ev, error_code or 0)
        if self.payload_enabled:
            self._pending.put(ev, 1)
            self._injected.put(ev, 0)
            self._has_payload.put(ev, 1 if payload else 0)
            self._payload.put(ev, dr6_to_pending(dr6) if payload and dr6 is not None else 0)
            self._flags.put(ev, abi.KVM_VCPUEVENT_VALID_PAYLOAD)
        else:
            self._injected.put(ev, 1)
            self._pending.put(ev, 0)
            self._has_payload.put(ev, 0)
            self._payload.put(ev, 0)
            self._flags.put(ev, 0)
        try:
            self.vcpu.set_vcpu_events(bytes(ev))
        except GuestDebugError:
            if old_dr6 is not None:
                self.dregs.write({"dr6": old_dr6})  # nothing half-applied
            raise
