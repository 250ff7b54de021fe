"""Range steps (``ResumeAction(step=True, range=...)``, GDB's ``vCont;r``) on x86: one stop
where plain single steps leave the range, a breakpoint inside the range stops it, and the
guest's own int3 inside it reaches the guest's #BP handler (``tests/guests/x86/loop.S`` and
``reinject.S``). The reference is a second machine single-stepped one instruction at a time."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from guestdbg.events import ResumeAction, StopEvent, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session

from . import machines
from .machines import Machine
from .sessions import STOP_TIMEOUT

MakeMachine = Callable[[str], Machine]
LOOPS = 5


def resume(s: Session, action: ResumeAction) -> StopEvent:
    s.resume({0: action})
    ev = s.wait_stop(STOP_TIMEOUT)
    assert ev is not None, "no stop: the guest hung"
    return ev


def plain_steps_out_of(s: Session, start: int, end: int) -> tuple[StopEvent, int]:
    for n in range(1, 1000):
        ev = resume(s, ResumeAction(step=True))
        if ev.reason.kind is not StopKind.STEP or not start <= ev.reason.pc < end:
            return ev, n
    raise AssertionError("the plain steps never left the range")


def steps(s: Session) -> int:
    return s.filter_stats().by_reason.get("step", 0)


def counted_loop(m: Machine) -> Session:
    m.start_at("count_loop")
    m.set_regs(rcx=LOOPS)
    return Session(m.vm, "x86")


def test_a_range_over_a_counted_loop_is_one_stop_where_plain_steps_leave_it(
    make_machine: MakeMachine,
) -> None:
    ref_m, m = make_machine("loop"), make_machine("loop")
    start, end = m.sym("count_loop"), m.sym("count_done")
    ref_s = counted_loop(ref_m)
    try:
        ref, n = plain_steps_out_of(ref_s, start, end)
    finally:
        ref_s.close()
    assert (ref.reason.pc, n) == (end, 3 * LOOPS)  # inc, dec, jnz per pass
    s = counted_loop(m)
    try:
        ev = resume(s, ResumeAction(step=True, range=(start, end)))
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, end)
        assert steps(s) == n and s.stats.stops_reported == 1
        assert m.u64("counter") == LOOPS
    finally:
        s.close()


def test_a_hardware_breakpoint_inside_the_range_stops_it_there(make_machine: MakeMachine) -> None:
    m = make_machine("loop")
    start, end = m.sym("count_loop"), m.sym("count_done")
    dec = start + 7  # incq counter(%rip) is 7 bytes
    s = counted_loop(m)
    try:
        s.insert_point(DebugPoint(PointKind.HW_BREAK, dec))
        for passes in range(1, LOOPS + 1):
            ev = resume(s, ResumeAction(step=True, range=(start, end)))
            assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, dec)
            assert m.u64("counter") == passes
    finally:
        s.close()


def test_the_guests_int3_inside_the_range_reaches_its_handler(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """A host software breakpoint elsewhere makes KVM exit on the guest's int3 (USE_SW_BP):
    the session re-injects it, and the range ends where plain steps end, in the handler."""
    ref_m, m = (machines.emulated(x86_guests("reinject")) for _ in range(2))
    start, end = m.sym("bp_start"), m.sym("bp_done")
    stops = []
    for x in (ref_m, m):
        x.start_at("bp_start")
        s = Session(x.vm, "x86")
        try:
            s.insert_point(DebugPoint(PointKind.SW_BREAK, x.sym("bp_done")))
            if x is ref_m:
                ev, _ = plain_steps_out_of(s, start, end)
            else:
                ev = resume(s, ResumeAction(step=True, range=(start, end)))
            stops.append(ev.reason)
            assert s.filter_stats().reinjected == 1
            handler = x.sym("bp_handler")
            assert handler <= ev.reason.pc < handler + 8
            ev = resume(s, ResumeAction())
            assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, x.sym("bp_done"))
            assert x.u64("bp_count") == 1
            assert x.u64("bp_frame_rip") == x.sym("bp_after_int3")
        finally:
            s.close()
    assert stops[0] == stops[1]
