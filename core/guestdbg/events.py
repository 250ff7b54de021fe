"""The generic form of a debug exit, and the verdicts the reinjection filter returns.

An arch decodes ``kvm_debug_exit_arch`` into a :class:`DebugEvent` that says what the hardware
saw, in generic terms, without judging whose event it is. The filter then returns exactly one
verdict: :class:`Report` (the host debugger's event), :class:`Reinject` (the guest's own event,
to be delivered as the hardware would have) or :class:`Resume` (nobody's: continue the guest).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest
from .numbering import ExceptionId
from .points import DEFAULT_SPACE, PointKind


class EventKind(enum.Enum):
    STEP = "step"
    """The hardware says a single-step completed (x86 DR6.BS)."""
    SW_TRAP = "sw_trap"
    """A software-breakpoint instruction trapped (x86 #BP)."""
    STEP_OR_SW_TRAP = "step_or_sw_trap"
    """Either of the two; the payload cannot tell (BookE status 0)."""
    HW_BREAK = "hw_break"
    """An instruction-address compare matched (BookE IAC, x86 DRn with RW=00)."""
    WATCH = "watch"
    """A data-address compare matched; ``access`` says read, write or either."""
    OTHER = "other"
    """Anything else the arch decoded (x86 DR6.BD, I/O breakpoints)."""


@dataclass(slots=True)
class DebugEvent:
    kind: EventKind
    pc: int
    """The guest PC the kernel reported (x86: linear RIP, BookE: NIP)."""
    address: int
    """The address the event is about: the PC for breakpoints and steps, the data address
    (as the kernel reports it) for watchpoints."""
    access: PointKind | None = None
    """For WATCH: WATCH_WRITE, WATCH_READ or WATCH_ACCESS as the hardware reported it."""
    space: str = DEFAULT_SPACE
    arch: Any = None
    """Arch payload kept for reinjection (x86: DR6; BookE: the raw status)."""


class StopKind(enum.Enum):
    SW_BREAK = "swbreak"
    HW_BREAK = "hwbreak"
    WATCH = "watch"
    RWATCH = "rwatch"
    AWATCH = "awatch"
    STEP = "step"
    INTERRUPT = "interrupt"
    """The debugger asked the VM to stop (Ctrl-C)."""
    GUEST_EVENT = "guest_event"
    """A guest-owned event caught before its reinjection (the session's ``catch`` switch)."""
    HALT = "halt"
    """The VMM stopped the guest: an exit it does not handle, or a failed ioctl."""


_WATCH_STOP = {
    PointKind.WATCH_WRITE: StopKind.WATCH,
    PointKind.WATCH_READ: StopKind.RWATCH,
    PointKind.WATCH_ACCESS: StopKind.AWATCH,
}


def stop_for_watch(kind: PointKind) -> StopKind:
    return _WATCH_STOP[kind]


@dataclass(frozen=True, slots=True)
class StopReason:
    kind: StopKind
    pc: int
    address: int | None = None
    """The watched address for watch stops (what GDB expects in ``watch:ADDR``)."""
    why: str = field(default="", compare=False)
    """For HALT: what stopped the guest, in words for the person at the debugger (the GDB stub
    prints it on GDB's console before the stop)."""
    fault: bool = False
    """For HALT: the vCPU could not go on as it was (a failed ioctl, an exit KVM could not
    complete such as KVM_EXIT_INTERNAL_ERROR), as opposed to a device model that stopped a guest
    it has nothing more to do for. GDB is told SIGABRT for these, as QEMU does for its
    internal-error run state."""

    def __str__(self) -> str:
        text = f"{self.kind.value} at {_hex(self.pc)}" if self.pc >= 0 else self.kind.value
        if self.address is not None:
            text += f" (address {self.address:#x})"
        if self.why:
            text += f": {self.why}"
        return text

    def __repr__(self) -> str:
        extra = "" if self.address is None else f", address={self.address:#x}"
        extra += f", why={self.why!r}" if self.why else ""
        extra += ", fault=True" if self.fault else ""
        return f"StopReason({self.kind}, pc={_hex(self.pc)}{extra})"


def _hex(pc: int) -> str:
    """A PC in hex; -1 is the session's "not read yet" (filled in when the stop is reported)."""
    return f"{pc:#x}" if pc >= 0 else "-1"


@dataclass(frozen=True, slots=True)
class Report:
    """The host debugger's event: stop the VM and tell the debugger why."""

    reason: StopReason


@dataclass(frozen=True, slots=True)
class Reinject:
    """The guest's own event: deliver ``exception`` to the guest as the hardware would have.

    ``payload`` holds the arch's syndrome values by name (x86 ``dr6``; BookE ``esr``, ``srr0``),
    plain ints so the pending reinjection survives a JSON round trip.
    """

    exception: ExceptionId
    pc: int
    payload: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resume:
    """Nobody's event: continue the guest without injecting anything. ``why`` is for logs."""

    why: str


Verdict = Report | Reinject | Resume


@dataclass(frozen=True, slots=True)
class ResumeAction:
    """What one vCPU does when the VM is resumed: continue or single-step. (GDB's signal on a
    resume is accepted and ignored, as QEMU does: a VMM has no signals to give a guest.)"""

    step: bool = False
    range: tuple[int, int] | None = None
    """With ``step``: a range step (GDB's ``vCont;r``). The vCPU steps once, then keeps
    stepping while its PC stays in ``[start, end)``, and reports one step stop when it leaves
    the range, or whatever else stops it first (a breakpoint, also one at an address inside the
    range, a watchpoint, a caught guest event, a halt). A reinjected guest exception is
    delivered as always (its handler lies outside the range, so the step after it reports).
    Where steps are planted trap words (``caps.step_via_sw``: BookE guest-priority) it is a
    single step (GDB steps again while the PC is in the range: docs/stepping.md)."""

    def __post_init__(self) -> None:
        r = self.range
        if r is None:
            return
        if not self.step:
            raise InvalidRequest("a range is a step's: ResumeAction(step=True, range=...)")
        start, end = r
        if not 0 <= start < end:
            raise InvalidRequest(f"range step: empty or negative range [{start:#x}, {end:#x})")


@dataclass(frozen=True, slots=True)
class StopEvent:
    """One stop to report: which vCPU (0-based index) and why."""

    vcpu: int
    reason: StopReason
    notices: tuple[str, ...] = field(default=(), compare=False)
    """What the person at the debugger should read with this stop, one message each (guest
    code rewritten under a breakpoint: :mod:`guestdbg.session.rewrites`); the GDB stub prints
    them on GDB's console before the stop."""
