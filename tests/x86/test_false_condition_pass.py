"""A hardware breakpoint whose condition is false, on both x86 hosts: every pass of the guest's
loop is one hit, judged once, and the vCPU runs on without a stop.

Where RFLAGS.RF suppresses the breakpoint for one instruction (the emulated host, as VMX) the
vCPU resumes with RF set and the session's debug state never changes (no KVM_SET_GUEST_DEBUG
per hit); where the host ignores RF (kvm_pvm: docs/reference/this-machine-kvm.md, "RFLAGS.RF is
ignored") it single-steps past the breakpoint with it disarmed, two KVM_SET_GUEST_DEBUG per
hit. Either way the guest ends as it would without the debugger: the loop's counter counts
every pass and RF, set by the session, is not left in the guest's RFLAGS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from guestdbg.events import StopKind
from guestdbg.host_report import kvm_module
from guestdbg.points import Condition, DebugPoint, HitContext, PointKind
from guestdbg.session.session import Session
from guestdbg_x86.debugops import RFLAGS_RF, X86VcpuDebug

from .machines import Machine
from .sessions import run_to_stop

MakeMachine = Callable[[str], Machine]
PASSES = 40


@dataclass
class LoopRun:
    """The guest's counting loop run to its end under a breakpoint whose condition is false."""

    m: Machine
    s: Session
    ops: X86VcpuDebug
    point: DebugPoint
    seen: list[int]
    """``rcx`` at each evaluation, in order."""
    guest_debug_calls: int
    """KVM_SET_GUEST_DEBUG calls from the resume to the stop."""


@contextlib.contextmanager
def false_condition_loop(
    make_machine: MakeMachine, offset: int, condition: Condition
) -> Iterator[LoopRun]:
    """Run ``loop`` from ``count_loop`` for :data:`PASSES` passes with a hardware breakpoint
    at ``count_loop + offset`` judged by ``condition``; checks that it ended as it would
    without the debugger (the ``hlt`` after the loop, every pass counted, each judged once in
    order, RF not left in RFLAGS)."""
    m = make_machine("loop")
    m.start_at("count_loop")
    m.set_regs(rcx=PASSES)
    s = Session(m.vm, "x86")
    try:
        seen: list[int] = []

        def judged(hit: HitContext) -> object:
            seen.append(hit.register("rcx"))
            return condition(hit)

        point = DebugPoint(PointKind.HW_BREAK, m.sym("count_loop") + offset)
        s.insert_point(point, judged)
        calls = s.stats.set_guest_debug_calls
        ev = run_to_stop(s)
        assert ev.reason.kind is StopKind.HALT  # the hlt after the loop: no hit stopped
        assert m.reg("rip") == m.sym("count_done") + 1
        assert seen == list(range(PASSES, 0, -1))
        assert m.u64("counter") == PASSES
        assert not m.reg("rflags") & RFLAGS_RF
        ops = s.ops[0]
        assert isinstance(ops, X86VcpuDebug)
        yield LoopRun(m, s, ops, point, seen, s.stats.set_guest_debug_calls - calls)
    finally:
        s.close()


def test_every_pass_is_one_hit_judged_false_and_the_guest_runs_to_its_end(
    make_machine: MakeMachine,
) -> None:
    with false_condition_loop(make_machine, 0, lambda hit: hit.register("rax") == -1) as run:
        st = run.s.point_stats()[run.point]
        assert (st.hits, st.evaluations, st.stops, st.errors) == (PASSES, PASSES, 0, 0)
        per_hit = 0 if run.ops.rf_honoured else 2
        # the breakpoint armed once for the run, then what each hit took
        assert run.guest_debug_calls == 1 + per_hit * PASSES


def test_the_emulated_host_honours_the_resume_flag_and_kvm_pvm_does_not(
    make_machine: MakeMachine,
) -> None:
    """What the x86 plugin decides per host: the emulated host models RF as VMX does;
    a real /dev/kvm is probed (kvm_pvm's instruction emulator ignores RF for the host's
    breakpoints)."""
    m = make_machine("loop")
    s = Session(m.vm, "x86")
    try:
        ops = s.ops[0]
        assert isinstance(ops, X86VcpuDebug)
        if m.kind == "emulated":
            assert ops.rf_honoured
        elif kvm_module() == "kvm_pvm":
            assert not ops.rf_honoured
            assert not ops.resume_past_hw_break(m.reg("rip"))
    finally:
        s.close()


def test_a_register_only_instruction_is_carried_out_in_place_where_rf_cannot_help(
    make_machine: MakeMachine,
) -> None:
    """The breakpoint on the loop's ``dec %rcx`` (register-only): where the host ignores RF the
    x86 plugin carries each hit's ``dec`` out itself (``execute_in_place``: no step, no
    KVM_SET_GUEST_DEBUG per hit); where RF is honoured that pass comes first. Either way the
    guest ends as without the debugger, its registers read from another thread than the
    vCPU's (the session's own vCPU thread ran it)."""
    with false_condition_loop(make_machine, 7, lambda hit: False) as run:  # after incq (7 bytes)
        assert run.m.reg("rcx") == 0
        in_place = 0 if run.ops.rf_honoured else PASSES
        assert run.s.stats.executed_in_place == in_place
        assert run.s.point_stats()[run.point].in_place == in_place
        assert run.guest_debug_calls == 1
