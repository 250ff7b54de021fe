"""Queued stops whose point the debugger deleted meanwhile are dropped, not reported: a
breakpoint's and a watchpoint's alike (a stop naming a point GDB no longer has arrives as a
stop GDB cannot explain, and the guest did not run after GDB's continue)."""

from __future__ import annotations

from guestdbg.capabilities import DebugCapabilities
from guestdbg.events import StopEvent, StopKind, StopReason
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
