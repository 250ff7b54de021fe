"""Range steps (``ResumeAction(step=True, range=...)``, GDB's ``vCont;r``) on the emulated
e500mc host: the vCPU steps while its PC stays in the range and one stop is reported, where the
first plain single step out of the range would have stopped; a breakpoint inside the range, a
guest exception's handler outside it and another vCPU's stop end it too.

Every reference is a second session on a fresh VM of the same guest, single-stepped one
instruction at a time: what GDB does without range stepping."""

from __future__ import annotations

import time

import pytest

from guestdbg.errors import InvalidRequest
from guestdbg.events import ResumeAction, StopEvent, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_DONE

from .support import make_vm, symbols

SMP = symbols("session_smp")
RE = symbols("session_reinject")
MMIO_ADDR = abi.layout().field("struct kvm_run", "mmio", "phys_addr")


def stop_at_done(index: int, reason: int, run: memoryview) -> bool:
    return not (reason == KVM_EXIT_MMIO and MMIO_ADDR.get(run) == HOSTIO_DONE)


def open_session(sessions: list[Session], guest: str, smp: int = 1) -> Session:
    s = Session(make_vm(guest, smp=smp), "e500mc", exit_handler=stop_at_done)  # type: ignore[arg-type]
    sessions.append(s)
    return s


def resume(s: Session, actions: dict[int, ResumeAction]) -> StopEvent:
    s.resume(actions)
    ev = s.wait_stop(10)
    assert ev is not None, "no stop: the guest hung"
    return ev


def steps(s: Session) -> int:
    """Debug exits judged a single-step completion so far (one per instruction stepped)."""
    return s.filter_stats().by_reason.get("step", 0)


def plain_steps_out_of(s: Session, start: int, end: int) -> tuple[StopEvent, int]:
    """Single steps until the PC leaves ``[start, end)`` or something else stops the vCPU:
    that stop and the number of steps taken."""
    for n in range(1, 1000):
        ev = resume(s, {0: ResumeAction(step=True)})
        if ev.reason.kind is not StopKind.STEP or not start <= ev.reason.pc < end:
            return ev, n
    raise AssertionError("the plain steps never left the range")


def test_a_range_of_several_instructions_is_one_stop_where_plain_steps_leave_it(
    sessions: list[Session],
) -> None:
    start, end = SMP["_start"], SMP["loop_end"]
    ref, n = plain_steps_out_of(open_session(sessions, "session_smp"), start, end)
    assert n > 5 and ref.reason.pc == SMP["loop_end"]
    s = open_session(sessions, "session_smp")
    before, stops = steps(s), s.stats.stops_reported
    ev = resume(s, {0: ResumeAction(step=True, range=(start, end))})
    assert (ev.vcpu, ev.reason.kind, ev.reason.pc) == (0, StopKind.STEP, ref.reason.pc)
    assert steps(s) - before == n, "one single-step exit per instruction, every one judged"
    assert s.stats.stops_reported - stops == 1
    assert s.ports[0].exits >= n


def test_a_range_step_starting_outside_its_range_is_a_single_step(
    sessions: list[Session],
) -> None:
    s = open_session(sessions, "session_smp")
    ev = resume(s, {0: ResumeAction(step=True, range=(SMP["loop"], SMP["loop_end"]))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SMP["_start"] + 4)


@pytest.mark.parametrize("kind", [PointKind.SW_BREAK, PointKind.HW_BREAK])
def test_a_breakpoint_inside_the_range_stops_it_there(
    sessions: list[Session], kind: PointKind
) -> None:
    s = open_session(sessions, "session_smp")
    s.insert_point(DebugPoint(kind, SMP["shared_bp"], 4))
    ev = resume(s, {0: ResumeAction(step=True, range=(SMP["_start"], SMP["loop_end"]))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SMP["shared_bp"])
    # From the breakpoint the range step steps over it and goes on to the range's end.
    ev = resume(s, {0: ResumeAction(step=True, range=(SMP["_start"], SMP["loop_end"]))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SMP["loop_end"])
    # Round the loop (loop_end branches back into the range): the breakpoint is hit again,
    # its trap word back after the step-over.
    ev = resume(s, {0: ResumeAction(step=True, range=(SMP["_start"], SMP["loop_end"] + 4))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SMP["shared_bp"])
    assert s.vm.read_phys(SMP["slots"], 4) == (1).to_bytes(4, "big"), "stw not yet run again"


def test_a_range_step_from_a_breakpoint_that_leaves_at_once_is_reported(
    sessions: list[Session],
) -> None:
    s = open_session(sessions, "session_smp")
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SMP["loop"], 4))
    ev = resume(s, {0: ResumeAction()})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, SMP["loop"])
    ev = resume(s, {0: ResumeAction(step=True, range=(SMP["loop"], SMP["loop"] + 4))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SMP["shared_bp"])
    ev = resume(s, {0: ResumeAction()})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, SMP["loop"])


@pytest.mark.parametrize("host_trap_elsewhere", [False, True])
def test_a_guest_exception_inside_the_range_reaches_the_guests_handler(
    sessions: list[Session], host_trap_elsewhere: bool
) -> None:
    """The guest's own breakpoint word at ``own_trap``: with a host software breakpoint set
    anywhere, KVM exits on it and the session re-injects it; without, the kernel delivers it.
    Either way the range ends in the guest's handler, where plain steps end, and the handler
    runs once."""
    start, end = RE["_start"], RE["done"]
    ref_s = open_session(sessions, "session_reinject")
    s = open_session(sessions, "session_reinject")
    for x in (ref_s, s):
        if host_trap_elsewhere:
            x.insert_point(DebugPoint(PointKind.SW_BREAK, RE["unused"], 4))
    ref, _ = plain_steps_out_of(ref_s, start, end)
    assert RE["program_handler"] <= ref.reason.pc < RE["program_handler"] + 40
    ev = resume(s, {0: ResumeAction(step=True, range=(start, end))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, ref.reason.pc)
    assert s.filter_stats().reinjected == (1 if host_trap_elsewhere else 0)
    ev = resume(s, {0: ResumeAction()})
    assert ev.reason.kind is StopKind.HALT  # HOSTIO_DONE
    assert s.vm.read_phys(RE["vars"], 8) == (1).to_bytes(4, "big") + RE["own_trap"].to_bytes(
        4, "big"
    ), "the handler ran once, for the trap at own_trap"


def test_a_range_step_on_one_vcpu_while_another_continues(sessions: list[Session]) -> None:
    """vCPU 0 range-steps round its loop (which never leaves the range) while vCPU 1 runs to
    its own breakpoint: every stop is vCPU 1's, vCPU 0 is stopped with it (all-stop) inside its
    range each time, and vCPU 0 makes progress across the resumes."""
    s = open_session(sessions, "session_smp", smp=2)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SMP["private_bp"], 4))
    span = (SMP["_start"], SMP["loop_end"] + 4)
    slot0 = 0
    for n in range(1, 200):
        ev = resume(s, {0: ResumeAction(step=True, range=span), 1: ResumeAction()})
        assert (ev.vcpu, ev.reason.kind, ev.reason.pc) == (1, StopKind.SW_BREAK, SMP["private_bp"])
        assert span[0] <= s.ports[0].ops.pc() < span[1]
        slot1 = int.from_bytes(s.vm.read_phys(SMP["slots"] + 16, 4), "big")
        assert slot1 == n, "vCPU 1 passed its breakpoint once per resume"
        slot0 = int.from_bytes(s.vm.read_phys(SMP["slots"], 4), "big")
        if slot0 > 1:
            break
    assert slot0 > 1, "vCPU 0 never went round its loop while range-stepping"


def test_a_range_step_that_ends_while_another_vcpu_continues_stops_both(
    sessions: list[Session],
) -> None:
    s = open_session(sessions, "session_smp", smp=2)
    span = (SMP["_start"], SMP["loop"])
    ev = resume(s, {0: ResumeAction(step=True, range=span), 1: ResumeAction()})
    assert (ev.vcpu, ev.reason.kind, ev.reason.pc) == (0, StopKind.STEP, SMP["loop"])
    assert s.wait_stop(0) is None and not s.control.running


def test_a_range_step_that_never_leaves_its_range_stops_on_an_interrupt(
    sessions: list[Session],
) -> None:
    """Round vCPU 0's loop, all inside the range: no stop of its own; GDB's Ctrl-C stops it
    inside the range (after the inline run was handed to the vCPU's thread)."""
    s = open_session(sessions, "session_smp")
    span = (SMP["_start"], SMP["loop_end"] + 4)
    s.resume({0: ResumeAction(step=True, range=span)})
    deadline = time.monotonic() + 10  # a hang guard, not a timing assertion
    while int.from_bytes(s.vm.read_phys(SMP["slots"], 4), "big") < 2:
        assert time.monotonic() < deadline, "vCPU 0 never went round its loop"
        assert s.wait_stop(0.01) is None, "a range step that never leaves its range stopped"
    s.interrupt()
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.INTERRUPT
    assert span[0] <= ev.reason.pc < span[1]


def test_with_planted_steps_a_range_step_is_one_step(sessions: list[Session]) -> None:
    """Guest-priority steps with planted trap words (docs/stepping.md): a range step reports
    after one instruction, which GDB's client accepts and steps on from."""
    s = Session(make_vm("session_smp"), "e500mc", policy="guest-priority")  # type: ignore[arg-type]
    sessions.append(s)
    ev = resume(s, {0: ResumeAction(step=True, range=(SMP["_start"], SMP["loop_end"]))})
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, SMP["_start"] + 4)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResumeAction(step=False, range=(0x1000, 0x1010)),
        lambda: ResumeAction(step=True, range=(0x1010, 0x1000)),
        lambda: ResumeAction(step=True, range=(0x1000, 0x1000)),
        lambda: ResumeAction(step=True, range=(-4, 0x1000)),
    ],
)
def test_a_bad_range_is_refused_when_the_action_is_made(make: object) -> None:
    with pytest.raises(InvalidRequest):
        make()  # type: ignore[operator]
