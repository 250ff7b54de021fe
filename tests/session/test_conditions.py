"""Breakpoint conditions judged on the vCPU's thread (issue 15, session layer), on the emulated
e500mc host: a false condition lets the vCPU run on, a true one stops it, and no hit is lost
while a trap word is out of memory for one vCPU's step past it."""

from __future__ import annotations

import time

import pytest

from guestdbg.errors import InvalidRequest
from guestdbg.events import ResumeAction, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg.session.hits import HitView

from .support import make_vm, symbols

GUEST = "session_smp"
SYM = symbols(GUEST)
SW = DebugPoint(PointKind.SW_BREAK, SYM["shared_bp"], 4)
HW = DebugPoint(PointKind.HW_BREAK, SYM["shared_bp"], 4)


def open_session(sessions: list[Session], smp: int = 1) -> Session:
    s = Session(make_vm(GUEST, smp=smp), "e500mc")  # type: ignore[arg-type]
    sessions.append(s)
    return s


def every_nth(n: int) -> object:
    def cond(view: HitView) -> bool:
        return view.register("r4") % n == 0

    return cond


def run_until_stop(s: Session) -> tuple[int, int]:
    """(vCPU, r4) at the next stop, which must be the breakpoint."""
    s.resume({i: ResumeAction() for i in range(s.vcpu_count())})
    ev = s.wait_stop(30)
    assert ev is not None, "no stop"
    assert ev.reason.kind in (StopKind.SW_BREAK, StopKind.HW_BREAK), ev
    assert ev.reason.pc == SYM["shared_bp"]
    r4 = s.read_named_registers(ev.vcpu, ["r4"])["r4"]
    assert r4 is not None
    return ev.vcpu, r4


@pytest.mark.parametrize("point", [SW, HW], ids=["trap-word", "iac"])
def test_a_register_condition_stops_only_where_it_holds(
    sessions: list[Session], point: DebugPoint
) -> None:
    s = open_session(sessions)
    s.insert_point(point, every_nth(100))  # type: ignore[arg-type]
    assert [run_until_stop(s)[1] for _ in range(3)] == [100, 200, 300]
    st = s.point_stats()[point]
    assert (st.hits, st.evaluations, st.stops, st.errors) == (300, 300, 3, 0)
    # the guest ran every pass it was not stopped at: its own count agrees with r4
    assert int.from_bytes(s.vm.read_phys(SYM["slots"], 4), "big") == 299


def test_a_memory_condition_reads_the_guest_and_sees_no_trap_word(sessions: list[Session]) -> None:
    s = open_session(sessions)
    original = s.read_memory(0, SYM["shared_bp"], 4)
    seen_code: list[bytes] = []

    def cond(view: HitView) -> bool:
        seen_code.append(view.read_memory(view.pc, 4))
        return int.from_bytes(view.read_memory(SYM["slots"], 4), "big") == 49

    s.insert_point(SW, cond)
    assert run_until_stop(s) == (0, 50)  # the store of pass 50 is the instruction at the point
    assert set(seen_code) == {original}
    assert s.vm.read_phys(SYM["shared_bp"], 4) != original  # the trap word is in memory


def test_a_failing_condition_stops_and_says_why(sessions: list[Session]) -> None:
    s = open_session(sessions)

    def cond(view: HitView) -> bool:
        return view.read_memory(0xFFFF_F000, 4) == b"\0\0\0\0"  # outside guest RAM

    s.insert_point(SW, cond)
    assert run_until_stop(s) == (0, 1)
    st = s.point_stats()[SW]
    assert (st.hits, st.evaluations, st.stops, st.errors) == (1, 1, 1, 1)
    assert "BadAddress" in st.last_error
    assert "0xfffff000" in s.monitor("points")


def test_a_false_condition_wakes_nobody(sessions: list[Session]) -> None:
    """The debugger waiting for a stop sees none while the guest passes the point again and
    again; the counters show it was reached."""
    s = open_session(sessions)
    s.insert_point(SW, lambda view: False)
    s.resume({0: ResumeAction()})
    deadline = time.monotonic() + 30
    while s.point_stats()[SW].hits < 50:
        assert time.monotonic() < deadline, "the guest never passed the point"
        assert s.wait_stop(0.01) is None
    s.interrupt()
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.INTERRUPT
    st = s.point_stats()[SW]
    assert st.stops == 0 and st.evaluations == st.hits >= 50


@pytest.mark.parametrize("smp", [2, 4])
def test_no_hit_is_lost_while_one_vcpu_steps_past_the_trap_word(
    sessions: list[Session], smp: int
) -> None:
    """Every vCPU passes the same trap word; each stop is at a multiple of 20 of that vCPU's
    own count, and each vCPU's stops run 20, 40, 60... with no gap: a vCPU that ran past the
    address while another had the trap word out for its step would skip a multiple."""
    s = open_session(sessions, smp)
    s.insert_point(SW, every_nth(20))  # type: ignore[arg-type]
    seen: dict[int, list[int]] = {i: [] for i in range(smp)}
    rounds = 0
    while min(len(v) for v in seen.values()) < 3:
        rounds += 1
        assert rounds < 100 * smp, f"a vCPU never stopped: {seen}"
        vcpu, r4 = run_until_stop(s)
        seen[vcpu].append(r4)
    for vcpu, stops in seen.items():
        assert stops == [20 * (k + 1) for k in range(len(stops))], (vcpu, stops)


def test_conditions_are_for_inserted_breakpoints_only(sessions: list[Session]) -> None:
    s = open_session(sessions)
    watch = DebugPoint(PointKind.WATCH_WRITE, SYM["slots"], 4)
    with pytest.raises(InvalidRequest, match="not inserted"):
        s.set_condition(SW, lambda view: True)
    s.insert_point(watch)
    with pytest.raises(InvalidRequest, match="breakpoints"):
        s.set_condition(watch, lambda view: True)
    s.remove_point(watch)
    s.insert_point(SW, lambda view: False)
    s.set_condition(SW, None)  # unconditional again: the first pass stops
    assert run_until_stop(s) == (0, 1)


@pytest.mark.parametrize("point", [SW, HW], ids=["trap-word", "iac"])
def test_a_range_step_goes_on_over_a_false_condition_and_stops_on_a_true_one(
    sessions: list[Session], point: DebugPoint
) -> None:
    """The loop body [loop, loop_end) range-stepped: a breakpoint at ``shared_bp`` whose
    condition is false is judged and passed without ending the range; where it holds, the
    range ends with the breakpoint."""
    s = open_session(sessions)
    for _ in range(20):  # from _start to the loop
        s.resume({0: ResumeAction(step=True)})
        ev = s.wait_stop(30)
        assert ev is not None
        if ev.reason.pc == SYM["loop"]:
            break
    s.insert_point(point, lambda view: False)
    rng = (SYM["loop"], SYM["loop_end"])
    s.resume({0: ResumeAction(step=True, range=rng)})
    ev = s.wait_stop(30)
    assert ev is not None and (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SYM["loop_end"])
    assert s.point_stats()[point].evaluations == 1
    s.set_condition(point, lambda view: True)
    s.resume({0: ResumeAction(step=True)})  # the loop's branch, back to its first line
    ev = s.wait_stop(30)
    assert ev is not None and ev.reason.pc == SYM["loop"]
    s.resume({0: ResumeAction(step=True, range=rng)})
    ev = s.wait_stop(30)
    assert ev is not None and (ev.reason.kind.value, ev.reason.pc) == (
        point.kind.value,
        SYM["shared_bp"],
    )
