"""Queued stops a new resume must not report: a breakpoint's or a watchpoint's whose point the
debugger deleted meanwhile, and a step's end (the resume it answered is over); and a stepping
vCPU's stop is reported before one another vCPU posted first. Each of them reported late is a
stop GDB cannot explain, and the guest did not run after GDB's continue (the soak,
docs/reference/peers.md §10)."""

from __future__ import annotations

from guestdbg.capabilities import DebugCapabilities
from guestdbg.events import ResumeAction, StopEvent, StopKind, StopReason
from guestdbg.points import DebugPoint, PointKind, PointTable
from guestdbg.session.control import RunControl


def test_queued_stops_of_deleted_points_are_dropped_and_the_others_kept() -> None:
    caps = DebugCapabilities(
        hw_breakpoints=2,
        hw_watchpoints=2,
        watch_kinds=frozenset({PointKind.WATCH_WRITE, PointKind.WATCH_ACCESS}),
    )
    table = PointTable(caps)
    kept_watch = DebugPoint(PointKind.WATCH_WRITE, 0x2000, 4)
    table.insert(kept_watch)
    c = RunControl(3, lambda i: None)
    stale = StopEvent(0, StopReason(StopKind.WATCH, 0x100, 0x3000))
    live = StopEvent(1, StopReason(StopKind.WATCH, 0x104, 0x2000))
    gone_bp = StopEvent(2, StopReason(StopKind.SW_BREAK, 0x108))
    c.stops.extend([stale, live, gone_bp])
    assert c.drop_stale_stops(table) == 2
    assert list(c.stops) == [live]


def test_a_queued_step_end_is_dropped_at_the_next_resume() -> None:
    """The step answered a resume GDB saw answered by another stop: reported at the next
    ``continue`` it would be a SIGTRAP GDB cannot explain (the soak's 'guest did not run')."""
    table = PointTable(DebugCapabilities(hw_breakpoints=2, hw_watchpoints=0))
    c = RunControl(2, lambda i: None)
    step = StopEvent(1, StopReason(StopKind.STEP, 0x10001C))
    c.stops.append(step)
    assert c.drop_stale_stops(table) == 1
    assert not c.stops


def test_the_stepping_vcpus_stop_is_reported_before_one_posted_earlier() -> None:
    """``vCont;s:2;c``: vCPU 0 hits a breakpoint just before vCPU 1's step ends. The step is
    reported (GDB's stepi gets its answer), the breakpoint stays queued for vCPU 0's resume."""
    caps = DebugCapabilities(hw_breakpoints=2, hw_watchpoints=0)
    table = PointTable(caps)
    table.insert(DebugPoint(PointKind.HW_BREAK, 0x100028, 4))
    c = RunControl(2, lambda i: None)
    c.resume({0: ResumeAction(), 1: ResumeAction(step=True)}, {})
    hit = StopEvent(0, StopReason(StopKind.HW_BREAK, 0x100028))
    step = StopEvent(1, StopReason(StopKind.STEP, 0x10001C))
    c.post(hit)
    c.park(0)
    c.post(step)
    c.park(1)
    assert c.wait_stop(0) == step
    assert list(c.stops) == [hit]
    assert c.drop_stale_stops(table) == 0  # the breakpoint is still there: reported later
