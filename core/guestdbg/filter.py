"""The reinjection filter: whose event is this debug exit?

KVM only arms the trapping. Once userspace enables guest debugging, every breakpoint, watchpoint
and single-step event leaves ``KVM_RUN`` as ``KVM_EXIT_DEBUG`` - including the guest's own use of
its debug facility and its own trap instructions - and the kernel does not say whose it was. So
userspace decides (Jan Kiszka's contract for KVM guest debugging; QEMU's ``kvm_handle_debug``):

1. A host single-step in progress claims any event the hardware could have raised for the step
   - except a trap-or-step event (BookE status 0) at the PC the step started from: the PC did
   not move, so the step did not complete; the instruction trapped. If the host's trap word is
   armed there (a breakpoint the step started on without stepping over it: one inserted while
   the vCPU stood there, unseen), it is the host's breakpoint; otherwise, if the arch says it is
   the guest's own trap instruction, it goes back to the guest (QEMU claims it for the host and
   the guest's exception is lost for every step over it). Likewise a software trap (x86 #BP)
   at the step's origin: the host's when its trap word is armed there, else the guest's (a
   step over a host trap word runs with the original instruction put back).
2. A software-breakpoint trap at an address where the host inserted one is the host's.
3. An instruction-address match at a host hardware breakpoint is the host's.
4. A data-address match at a host watchpoint of a compatible access kind is the host's.
5. Anything else belongs to the guest: the arch says how the hardware would have delivered it
   (:class:`Reinject`) or that the event cannot be the guest's and is dropped (:class:`Resume`).

The last case is where RESUME happens. It is spurious in one of these ways, each documented by
the arch that produces it: a hardware event that matches no host point and that the guest could
not have armed (BookE: while the host owns IAC/DAC the kernel ignores the guest's writes to them,
so an unmatched IAC/DAC event is a stale match from a point just removed); an x86 I/O breakpoint
the host never programs; a step event that arrives after the host stopped stepping.

Everything arch-specific is behind the arch's ``guest_verdict``; the steps above are plain dict
look-ups so the cost does not grow with the number of breakpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .events import (
    DebugEvent,
    EventKind,
    Reinject,
    Report,
    Resume,
    StopKind,
    StopReason,
    Verdict,
    stop_for_watch,
)
from .points import HwEntry, PointKind, PointTable, SwEntry

GuestVerdict = Callable[[DebugEvent], Reinject | Resume]

_STEP = EventKind.STEP
_EITHER = EventKind.STEP_OR_SW_TRAP
_SW_TRAP = EventKind.SW_TRAP
"""Compared by identity on the exit path: a set membership test would hash the member, and an
enum's ``__hash__`` is Python code (a call per test, on every exit)."""
_REPORTS_KEPT = 4096


@dataclass
class FilterStats:
    """Counters for the monitor command and the benchmarks: each exit lands in exactly one."""

    reported: int = 0
    reinjected: int = 0
    resumed: int = 0
    step_overs: int = 0
    """Steps the session took for itself (over a point under the PC): judged, never reported."""
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "reported": self.reported,
            "reinjected": self.reinjected,
            "resumed": self.resumed,
            "step_overs": self.step_overs,
            "by_reason": dict(self.by_reason),
        }

    def add(self, other: FilterStats) -> None:
        """Fold another vCPU's counters into these (the session's totals)."""
        self.reported += other.reported
        self.reinjected += other.reinjected
        self.resumed += other.resumed
        self.step_overs += other.step_overs
        for k, v in other.by_reason.items():
            self.by_reason[k] = self.by_reason.get(k, 0) + v

    def step_over_taken(self) -> None:
        """A STEP the filter reported was the session's own step-over: move it out of
        ``reported`` so the figures match what the debugger saw."""
        self.reported -= 1
        self.by_reason["step"] -= 1
        self.step_overs += 1


class ReinjectionFilter:
    """Decides one debug exit. Holds references only; the session owns the state."""

    def __init__(self, points: PointTable, guest_verdict: GuestVerdict) -> None:
        self.points = points
        self.guest_verdict = guest_verdict
        self.stats = FilterStats()
        self._steps: dict[int, Report] = {}
        self._sw_breaks: dict[int, Report] = {}
        self._hw_breaks: dict[int, Report] = {}
        """Verdicts by PC, each built once (:meth:`_report`)."""

    @staticmethod
    def _report(made: dict[int, Report], kind: StopKind, pc: int) -> Report:
        """``Report(StopReason(kind, pc))``, kept in ``made``: verdicts are immutable, the same
        few PCs come back on every exit (a breakpoint's, a loop's under a range step), and
        building two frozen dataclasses cost about 1 µs of each exit. One dict per kind,
        because a key holding the kind would hash the enum in Python."""
        verdict = made.get(pc)
        if verdict is None:
            if len(made) >= _REPORTS_KEPT:
                made.clear()
            verdict = made[pc] = Report(StopReason(kind, pc))
        return verdict

    def decide(
        self, ev: DebugEvent, host_stepping: bool, step_origin: int | None = None
    ) -> Verdict:
        """``step_origin``: the PC the host's single step started from, when known."""
        verdict = self._decide(ev, host_stepping, step_origin)
        stats = self.stats
        if type(verdict) is Report:
            stats.reported += 1
            key = verdict.reason.kind._value_  # the plain attribute: ``.value`` is a descriptor
        elif type(verdict) is Reinject:
            stats.reinjected += 1
            key = "reinject"
        else:
            stats.resumed += 1
            key = "resume"
        stats.by_reason[key] = stats.by_reason.get(key, 0) + 1
        return verdict

    def _decide(self, ev: DebugEvent, host_stepping: bool, step_origin: int | None) -> Verdict:
        kind = ev.kind
        if host_stepping:
            if kind is _STEP or kind is _EITHER:
                if kind is _EITHER and ev.pc == step_origin:
                    armed = self._armed_trap(ev)
                    if armed is not None:
                        return armed
                    guest = self.guest_verdict(ev)
                    if type(guest) is Reinject:
                        return guest
                return self._report(self._steps, StopKind.STEP, ev.pc)
            if kind is _SW_TRAP and ev.address == step_origin:
                # A step over a host trap word runs with the original word put back: a trap
                # there is the guest's own instruction, not the host's word (rule 2 would
                # report the same breakpoint on every continue). A trap word still armed
                # there is the host's breakpoint, hit before the step could begin.
                armed = self._armed_trap(ev)
                return armed if armed is not None else self.guest_verdict(ev)
        points = self.points
        if kind is _SW_TRAP or kind is _EITHER:
            key = (ev.space, ev.address)
            if key in points.sw:
                return self._report(self._sw_breaks, StopKind.SW_BREAK, ev.pc)
            hw = points.hw_breaks.get(key)
            if hw is not None and hw.via_sw:
                return self._report(self._hw_breaks, StopKind.HW_BREAK, ev.pc)
        elif kind is EventKind.HW_BREAK:
            if (ev.space, ev.address) in points.hw_breaks:
                return self._report(self._hw_breaks, StopKind.HW_BREAK, ev.pc)
        elif kind is EventKind.WATCH:
            entries = points.watch_addrs.get((ev.space, ev.address))
            if entries:
                hit = _match_watch(entries, ev.access)
                if hit is not None:
                    return Report(StopReason(stop_for_watch(hit), ev.pc, ev.address))
        return self.guest_verdict(ev)

    def _armed_trap(self, ev: DebugEvent) -> Report | None:
        """The host's breakpoint when its trap word is in memory at the event's address (not
        put back for a step-over)."""
        key = (ev.space, ev.address)
        if _armed(self.points.sw.get(key)):
            return self._report(self._sw_breaks, StopKind.SW_BREAK, ev.pc)
        hw = self.points.hw_breaks.get(key)
        if hw is not None and hw.via_sw and _armed(hw.trap):
            return self._report(self._hw_breaks, StopKind.HW_BREAK, ev.pc)
        return None


def _armed(entry: SwEntry | None) -> bool:
    return entry is not None and entry.inserted and not entry.suspended


def _match_watch(entries: list[HwEntry], access: PointKind | None) -> PointKind | None:
    """Pick the host watchpoint an access matches: access-watch first, then the exact kind.

    Same order as QEMU's ppc ``kvm_handle_hw_breakpoint`` (ACCESS, WRITE, READ) so an awatch
    and a watch on one address report as awatch for writes, like the hardware slot that fired.
    """
    kinds = [e.point.kind for e in entries]
    if PointKind.WATCH_ACCESS in kinds:
        return PointKind.WATCH_ACCESS
    if access is None or access is PointKind.WATCH_ACCESS:
        return kinds[0] if kinds else None
    return access if access in kinds else None
