"""``RunControl.keep_history``: the last run-control events, kept only when asked (the soak
prints them with an error)."""

from __future__ import annotations

from guestdbg.events import ResumeAction, StopEvent, StopKind, StopReason
from guestdbg.session.control import RunControl


def test_history_is_off_by_default_and_keeps_the_last_events_when_asked() -> None:
    c = RunControl(2, lambda i: None)
    assert c.history is None
    c.keep_history(3)
    c.resume({0: ResumeAction(), 1: ResumeAction(step=True)}, {})
    hit = StopEvent(0, StopReason(StopKind.SW_BREAK, 0x100))
    c.post(hit)
    c.park(0)
    c.park(1)
    assert c.wait_stop(0) == hit
    c.interrupt()
    assert c.history is not None
    assert [what for _, what, _ in c.history] == ["post", "report", "interrupt"]
    c.keep_history(0)
    assert c.history is None
