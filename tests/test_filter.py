"""The generic reinjection filter: host events are reported, the guest's go back to the guest."""

from __future__ import annotations

from guestdbg.events import (
    DebugEvent,
    EventKind,
    Reinject,
    Report,
    Resume,
    StopKind,
    StopReason,
)
from guestdbg.filter import ReinjectionFilter
from guestdbg.numbering import ExceptionId
from guestdbg.points import DebugPoint, PointKind, PointTable
from guestdbg_booke.plugin import E500_CAPS

PROGRAM = ExceptionId("booke.ivor", 6)


def guest(ev: DebugEvent) -> Reinject | Resume:
    if ev.kind is EventKind.STEP_OR_SW_TRAP:
        return Reinject(PROGRAM, ev.pc, {"esr": 0x08000000})
    return Resume("unmatched hardware event")


def make() -> tuple[PointTable, ReinjectionFilter]:
    t = PointTable(E500_CAPS)
    return t, ReinjectionFilter(t, guest)


def test_status_zero_is_a_step_while_the_host_steps() -> None:
    t, f = make()
    t.insert(DebugPoint(PointKind.SW_BREAK, 0x1000, 4))
    v = f.decide(DebugEvent(EventKind.STEP_OR_SW_TRAP, 0x1000, 0x1000), host_stepping=True)
    assert isinstance(v, Report) and v.reason.kind is StopKind.STEP


def test_status_zero_at_a_host_breakpoint_is_the_hosts() -> None:
    t, f = make()
    t.insert(DebugPoint(PointKind.SW_BREAK, 0x1000, 4))
    v = f.decide(DebugEvent(EventKind.STEP_OR_SW_TRAP, 0x1000, 0x1000), host_stepping=False)
    assert v == Report(v.reason) and v.reason.kind is StopKind.SW_BREAK and v.reason.pc == 0x1000


def test_status_zero_elsewhere_goes_back_to_the_guest() -> None:
    _, f = make()
    v = f.decide(DebugEvent(EventKind.STEP_OR_SW_TRAP, 0x2000, 0x2000), host_stepping=False)
    assert v == Reinject(PROGRAM, 0x2000, {"esr": 0x08000000})
    assert f.stats.reinjected == 1 and f.stats.reported == 0


def test_watch_reports_the_debugger_address_and_the_access_pc() -> None:
    t, f = make()
    t.insert(DebugPoint(PointKind.WATCH_READ, 0x3000, 4))
    ev = DebugEvent(EventKind.WATCH, 0x1234, 0x3000, access=PointKind.WATCH_READ)
    v = f.decide(ev, host_stepping=False)
    assert isinstance(v, Report)
    assert (v.reason.kind, v.reason.pc, v.reason.address) == (StopKind.RWATCH, 0x1234, 0x3000)
    # a write to a read-only watch is not the host's
    ev = DebugEvent(EventKind.WATCH, 0x1238, 0x3000, access=PointKind.WATCH_WRITE)
    assert isinstance(f.decide(ev, host_stepping=False), Resume)


def test_access_watch_claims_reads_and_writes() -> None:
    t, f = make()
    t.insert(DebugPoint(PointKind.WATCH_ACCESS, 0x3000, 4))
    for access in (PointKind.WATCH_READ, PointKind.WATCH_WRITE):
        v = f.decide(DebugEvent(EventKind.WATCH, 0x10, 0x3000, access=access), False)
        assert isinstance(v, Report) and v.reason.kind is StopKind.AWATCH


def test_unmatched_hardware_breakpoint_resumes() -> None:
    t, f = make()
    t.insert(DebugPoint(PointKind.HW_BREAK, 0x4000, 4))
    assert isinstance(f.decide(DebugEvent(EventKind.HW_BREAK, 0x4000, 0x4000), False), Report)
    assert isinstance(f.decide(DebugEvent(EventKind.HW_BREAK, 0x4004, 0x4004), False), Resume)
    assert f.stats.as_dict()["by_reason"] == {"hwbreak": 1, "resume": 1}


def test_a_trap_at_the_step_origin_is_the_guests_not_a_completed_step() -> None:
    """The PC did not move, so the host's step did not complete: the instruction trapped."""
    _, f = make()
    v = f.decide(DebugEvent(EventKind.STEP_OR_SW_TRAP, 0x2000, 0x2000), True, step_origin=0x2000)
    assert v == Reinject(PROGRAM, 0x2000, {"esr": 0x08000000})
    v = f.decide(DebugEvent(EventKind.STEP_OR_SW_TRAP, 0x2004, 0x2004), True, step_origin=0x2000)
    assert isinstance(v, Report) and v.reason.kind is StopKind.STEP


def test_a_step_that_stays_put_is_still_a_step_when_the_arch_sees_no_trap() -> None:
    """``b .`` steps to itself; the arch finds no trap word there and the step is reported."""
    t = PointTable(E500_CAPS)
    f = ReinjectionFilter(t, lambda ev: Resume("not a breakpoint instruction"))
    v = f.decide(DebugEvent(EventKind.STEP_OR_SW_TRAP, 0x2000, 0x2000), True, step_origin=0x2000)
    assert isinstance(v, Report) and v.reason.kind is StopKind.STEP


def test_a_software_trap_at_the_step_origin_is_the_guests_own_instruction() -> None:
    """x86: stepping from a host int3 runs the original byte; if that byte is the guest's own
    int3, the #BP is the guest's. Elsewhere during the step, a host trap word is the host's."""
    bp = ExceptionId("x86.vector", 3)
    t = PointTable(E500_CAPS)
    f = ReinjectionFilter(t, lambda ev: Reinject(bp, ev.pc, {}))
    t.insert(DebugPoint(PointKind.SW_BREAK, 0x1000, 4))
    t.insert(DebugPoint(PointKind.SW_BREAK, 0x2000, 4))
    at_origin = DebugEvent(EventKind.SW_TRAP, 0x1000, 0x1000)
    assert f.decide(at_origin, host_stepping=True, step_origin=0x1000) == Reinject(bp, 0x1000, {})
    not_stepping = f.decide(at_origin, host_stepping=False)  # a plain hit: the host's
    assert isinstance(not_stepping, Report) and not_stepping.reason.kind is StopKind.SW_BREAK
    elsewhere = DebugEvent(EventKind.SW_TRAP, 0x2000, 0x2000)
    v = f.decide(elsewhere, host_stepping=True, step_origin=0x1000)
    assert isinstance(v, Report) and (v.reason.kind, v.reason.pc) == (StopKind.SW_BREAK, 0x2000)


def test_an_armed_host_trap_at_the_step_origin_is_the_hosts_breakpoint() -> None:
    """A step that starts on a host trap word it is not stepping over (the breakpoint went in
    while the vCPU stood there, unseen) hits that trap at once: the host's breakpoint, never
    the guest's own trap (the soak found the host's trap re-injected into the guest). With the
    word put back for a step-over (suspended), what traps there is the guest's instruction."""
    bp = ExceptionId("x86.vector", 3)
    for kind, verdict in ((EventKind.STEP_OR_SW_TRAP, guest), (EventKind.SW_TRAP, None)):
        t = PointTable(E500_CAPS)
        f = ReinjectionFilter(t, verdict or (lambda ev: Reinject(bp, ev.pc, {})))
        t.insert(DebugPoint(PointKind.SW_BREAK, 0x1000, 4))
        entry = t.sw[("mem", 0x1000)]
        entry.inserted = True
        ev = DebugEvent(kind, 0x1000, 0x1000)
        v = f.decide(ev, host_stepping=True, step_origin=0x1000)
        assert isinstance(v, Report) and (v.reason.kind, v.reason.pc) == (StopKind.SW_BREAK, 0x1000)
        entry.suspended = True
        assert isinstance(f.decide(ev, host_stepping=True, step_origin=0x1000), Reinject), kind


def test_verdicts_kept_per_pc_say_each_pcs_stop_and_stay_bounded() -> None:
    """The filter keeps each verdict it built for a PC (they are immutable): every exit must
    still get the verdict for its own kind and PC, a range step over many PCs included, and
    what is kept must not grow with the PCs seen."""
    t, f = make()
    t.insert(DebugPoint(PointKind.SW_BREAK, 0x1000, 4))
    t.insert(DebugPoint(PointKind.HW_BREAK, 0x2000, 4))
    pcs = range(0x10000, 0x10000 + 4 * 10_000, 4)
    for pc in pcs:
        v = f.decide(DebugEvent(EventKind.STEP, pc, pc), host_stepping=True)
        assert isinstance(v, Report) and (v.reason.kind, v.reason.pc) == (StopKind.STEP, pc)
    sw = f.decide(DebugEvent(EventKind.SW_TRAP, 0x1000, 0x1000), host_stepping=False)
    hw = f.decide(DebugEvent(EventKind.HW_BREAK, 0x2000, 0x2000), host_stepping=False)
    step = f.decide(DebugEvent(EventKind.STEP, 0x1000, 0x1000), host_stepping=True)
    assert isinstance(sw, Report) and sw.reason == StopReason(StopKind.SW_BREAK, 0x1000)
    assert isinstance(hw, Report) and hw.reason == StopReason(StopKind.HW_BREAK, 0x2000)
    assert isinstance(step, Report) and step.reason == StopReason(StopKind.STEP, 0x1000)
    kept = sum(len(d) for d in vars(f).values() if isinstance(d, dict))
    assert kept <= 4096 + 2, kept  # the steps seen last, and the two breakpoints
    assert f.stats.reported == len(pcs) + 3
