"""The vCPU's queued events, as ``kvm_vcpu_ioctl_x86_get/set_vcpu_events`` (x86.c) keep them.

Rules reproduced from the kernel: unknown ``flags`` are EINVAL; VALID_PAYLOAD needs
KVM_CAP_EXCEPTION_PAYLOAD enabled on the VM, and then a pending exception keeps its payload
while an injected one drops it (without the flag, ``pending`` and the payload are ignored); an
exception vector above 31, or NMI, is EINVAL; ``interrupt`` and ``nmi.injected`` are applied
unconditionally, NMI-pending and the interrupt shadow only with their VALID flags. Reading back
never reports a soft exception (#BP, #OF): "the API doesn't provide the instruction length for
software exceptions" - the guest meets it again as long as RIP is not advanced. Without the
payload capability a pending payload is folded into DR6 before it is reported.

The model has no SMM and no triple-fault event capability: VALID_TRIPLE_FAULT is EINVAL, as on
a kernel where the VM did not enable KVM_CAP_X86_TRIPLE_FAULT_EVENT.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from guestdbg.errors import KernelError

from .. import abi

NMI_VECTOR = 2
SOFT_EXCEPTIONS = frozenset({3, 4})
"""#BP and #OF: injected as software exceptions with the saved instruction length."""
ACCEPTED_FLAGS = (
    abi.KVM_VCPUEVENT_VALID_NMI_PENDING
    | abi.KVM_VCPUEVENT_VALID_SIPI_VECTOR
    | abi.KVM_VCPUEVENT_VALID_SHADOW
    | abi.KVM_VCPUEVENT_VALID_SMM
    | abi.KVM_VCPUEVENT_VALID_PAYLOAD
    | abi.KVM_VCPUEVENT_VALID_TRIPLE_FAULT
)
_EV = "struct kvm_vcpu_events"


@dataclass
class QueuedException:
    vector: int
    injected: bool
    pending: bool
    has_error_code: bool = False
    error_code: int = 0
    has_payload: bool = False
    payload: int = 0


@dataclass
class QueuedInterrupt:
    vector: int
    soft: bool


class EventState:
    """One vCPU's exception / interrupt / NMI queue."""

    def __init__(
        self,
        payload_enabled: Callable[[], bool],
        deliver_payload: Callable[[QueuedException], None],
    ) -> None:
        self._payload_enabled = payload_enabled
        self._deliver_payload = deliver_payload
        self.exception: QueuedException | None = None
        self.interrupt: QueuedInterrupt | None = None
        self.nmi_injected = False
        self.nmi_pending = False
        self.nmi_masked = False
        self.shadow = 0
        self.event_exit_inst_len = 0
        """VMX ``vcpu->arch.event_exit_inst_len``: set by #BP/#DB exits, used when a soft
        exception is injected. A new vCPU holds 0."""
        lay = abi.layout()
        self._size = lay.sizeof(_EV)
        f = lay.field
        self._f = {
            "injected": f(_EV, "exception", "injected"),
            "nr": f(_EV, "exception", "nr"),
            "has_error_code": f(_EV, "exception", "has_error_code"),
            "pending": f(_EV, "exception", "pending"),
            "error_code": f(_EV, "exception", "error_code"),
            "irq_injected": f(_EV, "interrupt", "injected"),
            "irq_nr": f(_EV, "interrupt", "nr"),
            "irq_soft": f(_EV, "interrupt", "soft"),
            "shadow": f(_EV, "interrupt", "shadow"),
            "nmi_injected": f(_EV, "nmi", "injected"),
            "nmi_pending": f(_EV, "nmi", "pending"),
            "nmi_masked": f(_EV, "nmi", "masked"),
            "flags": f(_EV, "flags"),
            "has_payload": f(_EV, "exception_has_payload"),
            "payload": f(_EV, "exception_payload"),
        }

    @property
    def busy(self) -> bool:
        return self.exception is not None

    def queue(self, vector: int, payload: int | None = None) -> None:
        """The kernel queueing an exception itself (``kvm_queue_exception_p``)."""
        self.exception = QueuedException(
            vector, injected=False, pending=True, has_payload=payload is not None,
            payload=payload or 0,
        )  # fmt: skip

    def set(self, buf: bytes) -> None:
        if len(buf) != self._size:
            raise KernelError("KVM_SET_VCPU_EVENTS", errno.EFAULT)
        f = self._f
        flags = f["flags"].get(buf)
        if flags & ~ACCEPTED_FLAGS or flags & abi.KVM_VCPUEVENT_VALID_TRIPLE_FAULT:
            raise KernelError("KVM_SET_VCPU_EVENTS", errno.EINVAL, f"flags {flags:#x}")
        injected = bool(f["injected"].get(buf))
        pending = bool(f["pending"].get(buf))
        has_payload = bool(f["has_payload"].get(buf))
        if flags & abi.KVM_VCPUEVENT_VALID_PAYLOAD:
            if not self._payload_enabled():
                raise KernelError(
                    "KVM_SET_VCPU_EVENTS", errno.EINVAL, "KVM_CAP_EXCEPTION_PAYLOAD not enabled"
                )
            if pending:
                injected = False
            else:
                has_payload = False
        else:
            pending = False
            has_payload = False
        nr = f["nr"].get(buf)
        if (injected or pending) and (nr > 31 or nr == NMI_VECTOR):
            raise KernelError("KVM_SET_VCPU_EVENTS", errno.EINVAL, f"exception vector {nr}")
        self.exception = (
            QueuedException(
                nr, injected, pending, bool(f["has_error_code"].get(buf)),
                f["error_code"].get(buf), has_payload, f["payload"].get(buf),
            )
            if injected or pending
            else None
        )  # fmt: skip
        self.interrupt = (
            QueuedInterrupt(f["irq_nr"].get(buf), bool(f["irq_soft"].get(buf)))
            if f["irq_injected"].get(buf)
            else None
        )
        self.nmi_injected = bool(f["nmi_injected"].get(buf))
        self.nmi_masked = bool(f["nmi_masked"].get(buf))
        if flags & abi.KVM_VCPUEVENT_VALID_NMI_PENDING:
            self.nmi_pending = bool(f["nmi_pending"].get(buf))
        if flags & abi.KVM_VCPUEVENT_VALID_SHADOW:
            self.shadow = f["shadow"].get(buf)

    def get(self) -> bytearray:
        f = self._f
        buf = bytearray(self._size)
        enabled = self._payload_enabled()
        ex = self.exception
        if ex is not None and not enabled and ex.pending and ex.has_payload:
            self._deliver_payload(ex)
            ex.has_payload, ex.payload = False, 0
        if ex is not None:
            if ex.vector not in SOFT_EXCEPTIONS:
                f["injected"].put(buf, int(ex.injected or (ex.pending and not enabled)))
                f["pending"].put(buf, int(ex.pending and enabled))
            f["nr"].put(buf, ex.vector)
            f["has_error_code"].put(buf, int(ex.has_error_code))
            f["error_code"].put(buf, ex.error_code)
            f["has_payload"].put(buf, int(ex.has_payload))
            f["payload"].put(buf, ex.payload)
        if self.interrupt is not None and not self.interrupt.soft:
            f["irq_injected"].put(buf, 1)
        if self.interrupt is not None:
            f["irq_nr"].put(buf, self.interrupt.vector)
        f["shadow"].put(buf, self.shadow)
        f["nmi_injected"].put(buf, int(self.nmi_injected))
        f["nmi_pending"].put(buf, int(self.nmi_pending))
        f["nmi_masked"].put(buf, int(self.nmi_masked))
        flags = (
            abi.KVM_VCPUEVENT_VALID_NMI_PENDING
            | abi.KVM_VCPUEVENT_VALID_SHADOW
            | abi.KVM_VCPUEVENT_VALID_SMM
        )
        if enabled:
            flags |= abi.KVM_VCPUEVENT_VALID_PAYLOAD
        f["flags"].put(buf, flags)
        return buf
