"""Driving a :class:`guestdbg.session.Session` in the x86 tests: run until the next stop, with
a deadline, and read the guest's records."""

from __future__ import annotations

from guestdbg.events import ResumeAction, StopEvent, StopKind
from guestdbg.session.session import Session

STOP_TIMEOUT = 10.0


def run_to_stop(s: Session, step: bool = False) -> StopEvent:
    s.resume({0: ResumeAction(step=step)})
    ev = s.wait_stop(STOP_TIMEOUT)
    if ev is None:
        s.interrupt()
        s.wait_stop(STOP_TIMEOUT)
        raise AssertionError(f"no stop within {STOP_TIMEOUT}s: the guest hung")
    return ev


def halted(ev: StopEvent) -> bool:
    """The VMM stopped the guest on an exit it does not handle (HLT, an internal error)."""
    return ev.reason.kind is StopKind.HALT
