"""``bench/kvm_exit_overhead.py``'s loops on this machine's real ``/dev/kvm``: what they do, not
how long it takes. The bare loop makes exactly the single steps it counts; the framework loop
reports every one of its single steps to the debugger, in the guest loop's instruction order,
none lost, none twice; the ``cond`` loop passes every hit of its hardware breakpoint with the
condition judged false and no stop; the bench's last lines have the documented form.

Skipped, saying why, without a usable x86-64 ``/dev/kvm`` (the bench itself then prints
``skipped: <reason>``)."""

from __future__ import annotations

import contextlib
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import kvm_exit_overhead as bench

from guestdbg.kvm.device import KvmVcpu
from guestdbg.points import Condition, HitContext
from guestdbg.session import Session

pytestmark = pytest.mark.realkvm

EXITS = 200
HANG_GUARD = 60.0  # seconds; a KVM_RUN that never exits fails the test instead of the suite


@pytest.fixture(scope="module")
def rig() -> Iterator[bench.Rig]:
    try:
        with bench.rig() as r:
            yield r
    except bench.Skip as e:
        pytest.skip(str(e))


@contextlib.contextmanager
def hang_guard() -> Iterator[None]:
    """SIGALRM interrupts a KVM_RUN on this (the main) thread that does not return."""

    def fail(signum: int, frame: object) -> None:
        raise TimeoutError(f"no exit within {HANG_GUARD} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, HANG_GUARD)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def reg(r: bench.Rig, vcpu: KvmVcpu, name: str) -> int:
    return r.layout.field("struct kvm_regs", name).get(vcpu.get_regs())


def after(sym: dict[str, int], pc: int, steps: int) -> list[int]:
    """The PCs ``steps`` single steps stop at, from ``pc`` in the guest loop."""
    loop = [sym[label] for label in bench.LOOP]
    at = loop.index(pc)
    return [loop[(at + k) % len(loop)] for k in range(1, steps + 1)]


def test_the_bare_loop_makes_exactly_the_steps_it_counts(rig: bench.Rig) -> None:
    vm, vcpu, sym = rig.guest()
    try:
        rax = reg(rig, vcpu, "rax")
        bench.start_bare(rig, vcpu)
        with hang_guard():
            bench.bare_steps(rig, vcpu, EXITS)
        assert reg(rig, vcpu, "rip") == after(sym, sym["step_loop"], EXITS)[-1]
        assert reg(rig, vcpu, "rax") - rax == (EXITS + 2) // 3  # one inc per pass, the first
    finally:
        vm.close()


def test_the_framework_loop_reports_every_step_in_order_once(rig: bench.Rig) -> None:
    vm, vcpu, sym = rig.guest()
    with hang_guard():
        session = bench.start_framework(vm)
    try:
        assert isinstance(session, Session) and session.attached
        # the guest ran freely until the attach: it may be at any of the loop's instructions
        start, rax = reg(rig, vcpu, "rip"), reg(rig, vcpu, "rax")
        pcs: list[int] = []
        with hang_guard():
            bench.framework_steps(session, EXITS // 2, pcs)
            bench.framework_steps(session, EXITS - EXITS // 2, pcs)  # a next round goes on
        assert pcs == after(sym, start, EXITS)
        assert reg(rig, vcpu, "rip") == pcs[-1]
        incs = sum(1 for pc in [start, *pcs[:-1]] if pc == sym["step_loop"])
        assert reg(rig, vcpu, "rax") - rax == incs  # each step ran one instruction
        assert session.stats.stops_reported == EXITS
        stats = session.filter_stats()
        assert (stats.reported, stats.reinjected, stats.resumed) == (EXITS, 0, 0)
        assert stats.by_reason == {"step": EXITS}
        assert not session.control.stops, "a stop was left queued"
        assert session.port(0).exits == EXITS + 1  # and the attach's kick
    finally:
        session.close()
        vm.close()


def test_the_bench_ends_with_the_documented_line(
    rig: bench.Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    with hang_guard():
        assert bench.main(["--rounds", "1", "--exits", "20"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    number = r"\d+\.\d+"
    assert re.fullmatch(
        rf"bare_us=({number}) framework_us=({number}) overhead_ratio=(-?{number}) "
        rf"range_us=({number}) range_overhead_ratio=(-?{number})",
        last,
    ), last


def test_the_range_loop_judges_every_step_on_the_vcpus_thread_and_reports_none(
    rig: bench.Rig,
) -> None:
    """A range step over the whole loop: each exit is a single step judged to stay in the
    range (nothing reported, nothing queued), and the guest ran exactly one instruction per
    exit (``rax`` counts the loop's passes: one per three instructions)."""
    vm, vcpu, sym = rig.guest()
    rax = rig.layout.field("struct kvm_regs", "rax")
    session = bench.start_framework(vm, bench.whole_loop(sym))
    try:
        with hang_guard():
            before = rax.get(vcpu.get_regs())
            bench.range_steps(session, 3 * EXITS)
        assert rax.get(vcpu.get_regs()) - before == EXITS
        stats = session.filter_stats()
        assert stats.by_reason == {"step": 3 * EXITS} and stats.reported == 3 * EXITS
        assert not session.control.stops and session.stats.stops_reported == 0
    finally:
        session.close()
        vm.close()


@pytest.mark.parametrize("which", ["python", "agent"])
def test_the_cond_loop_judges_every_pass_of_the_guest_loop_and_never_stops(
    rig: bench.Rig, which: str
) -> None:
    """Each hit of the hardware breakpoint is judged once, on one more pass of the guest loop
    (the condition sees ``rax``, the loop's counter, one higher each time: no pass ran by
    unseen, none was judged twice), false, and the vCPU runs on: nothing stopped, nothing
    reported, the guest's registers only what the loop made of them."""
    vm, vcpu, sym = rig.guest()
    seen: list[int] = []

    def recording(session: Session) -> Condition:
        never = bench.never_python if which == "python" else bench.never_agent(session)

        def condition(hit: HitContext) -> bool:
            seen.append(hit.register("rax"))
            return bool(never(hit))

        return condition

    with hang_guard():
        session, point = bench.start_cond(vm, sym, recording)
    try:
        before = vcpu.get_regs()  # the vCPU is out of KVM_RUN until the loop's next call
        rax = reg(rig, vcpu, "rax")
        with hang_guard():
            bench.cond_hits(session, point, EXITS // 2)
            bench.cond_hits(session, point, EXITS - EXITS // 2)  # a next round goes on
        assert seen == list(range(rax, rax + EXITS))
        st = session.point_stats()[point]
        assert (st.hits, st.evaluations, st.stops, st.errors) == (EXITS, EXITS, 0, 0)
        assert session.stats.stops_reported == 0
        assert not session.control.stops, "a stop was queued"
        after = vcpu.get_regs()
        unchanged = ("rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r15")
        if session.stats.executed_in_place:
            # the x86 plugin carried out each hit's inc itself (execute_in_place), the last too;
            # not the very first, the guest's first instruction: its page-table walk would set
            # accessed bits (guestdbg_x86.code_fetch), so that one is stepped
            assert session.stats.executed_in_place in (EXITS - 1, EXITS)
            assert reg(rig, vcpu, "rip") == sym["step_loop_nop"]
            assert reg(rig, vcpu, "rax") == rax + EXITS
        else:
            assert reg(rig, vcpu, "rip") == sym[bench.HIT_AT]  # the last hit, judged
            assert reg(rig, vcpu, "rax") == rax + EXITS - 1  # its inc not yet run
            unchanged += ("rflags",)
        for name in unchanged:
            field = rig.layout.field("struct kvm_regs", name)
            assert field.get(after) == field.get(before), name
    finally:
        session.close()
        vm.close()


def test_the_cond_measurement_ends_with_its_documented_line(
    rig: bench.Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    with hang_guard():
        assert bench.main(["--what", "cond", "--rounds", "1", "--exits", "20"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"cond_python_evals_per_s=\d+ cond_agent_evals_per_s=\d+ cond_bare_hits_per_s=\d+"
        r" cond_bare_in_place_per_s=\d+",
        last,
    ), last
