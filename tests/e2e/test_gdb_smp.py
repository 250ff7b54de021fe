"""Real GDB on a 2-vCPU guest (``guests/smp_tick.S``): each vCPU is a GDB thread, thread N is
vCPU N-1, and the guest tells its vCPUs apart by PIR, so a stop's thread can be checked
against what the guest itself computed on that vCPU (r3 = PIR inside ``tick``)."""

from __future__ import annotations

import re

import pytest

from .served import NEEDS_GDB, reported_pc, served, traced

pytestmark = NEEDS_GDB
VCPUS = 2


def pc_of(g: object, thread: int) -> int:
    out = g.check(f"thread apply {thread} print/x $pc").console  # type: ignore[attr-defined]
    m = re.search(r"= (0x[0-9a-f]+)", out)
    assert m, out
    return int(m.group(1), 16)


def test_each_vcpu_is_a_thread_and_thread_apply_all_reaches_both() -> None:
    with served("smp_tick", smp=VCPUS) as s, s.gdb() as g:
        threads = g.check("info threads").console
        assert re.search(r"^\*?\s+1\s+Thread 1 \(vCPU 0 ", threads, re.M), threads
        assert re.search(r"^\s+2\s+Thread 2 \(vCPU 1 ", threads, re.M), threads
        g.check("break *tick")
        seen = set()
        # Until each vCPU has stopped in tick (it set r30 = PIR before). How many continues that
        # takes is the host scheduler's business: a vCPU thread scheduled late finds the other
        # vCPU's all-stop kick waiting and makes no progress that round (20 were not enough in
        # the 10-run loop under load); 300 is a hang guard.
        for _ in range(300):
            seen.add(g.check("continue").stop_thread)
            if seen == {1, 2}:
                break
        assert seen == {1, 2}
        out = g.check("thread apply all print $r30").console
        assert re.search(r"^Thread 1 .*\n\$\d+ = 0$", out, re.M), out  # r30 = PIR
        assert re.search(r"^Thread 2 .*\n\$\d+ = 1$", out, re.M), out


def test_breakpoint_in_shared_code_stops_with_the_thread_of_the_vcpu_that_hit_it() -> None:
    with served("smp_tick", smp=VCPUS) as s, s.gdb() as g:
        tick = s.sym["tick"]
        g.check("break *tick")
        seen = set()
        for _ in range(60):  # which vCPU gets there first is the scheduler's: wait for both
            if seen == {1, 2}:
                break
            r, replies = traced(g, "continue")
            assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", tick)
            assert replies[-1]["thread"] == f"{r.stop_thread:x}"
            assert reported_pc(replies[-1]) == tick
            r3 = g.check("print $r3").console  # the guest's own PIR, read on the stop's thread
            assert re.search(rf"= {r.stop_thread - 1}$", r3.strip()), (r.stop_thread, r3)
            seen.add(r.stop_thread)
        assert seen == {1, 2}


def test_every_hit_on_a_shared_breakpoint_is_reported_to_gdb() -> None:
    """Each vCPU's ``counters[PIR]`` counts its completed passes through ``tick`` (the store at
    ``tick_store``); with a breakpoint on ``tick`` from the start, every pass must have been a
    reported stop of that vCPU's thread. A vCPU whose PC is past ``tick`` but not past the store
    has been reported for a pass it has not counted yet; so has the stop's own thread at
    ``tick``. Any other vCPU at ``tick`` has not hit the breakpoint yet."""
    with served("smp_tick", smp=VCPUS) as s, s.gdb() as g:
        g.check("break *tick")
        hits = dict.fromkeys(range(1, VCPUS + 1), 0)
        for _ in range(20):
            r = g.check("continue")
            hits[r.stop_thread] += 1  # type: ignore[index]
        tick, store = s.sym["tick"], s.sym["tick_store"]
        counted = {t: s.word("counters", t - 1) for t in hits}
        for t in hits:
            pc = pc_of(g, t)
            if tick < pc <= store or (pc == tick and t == r.stop_thread):
                counted[t] += 1
        assert counted == hits


def test_watchpoint_stops_the_vcpu_that_wrote_with_the_store_as_pc() -> None:
    with served("smp_tick", smp=VCPUS) as s, s.gdb() as g:
        g.check(f"watch *(int *){s.sym['counters'] + 4:#x}")  # counters[1]: vCPU 1's
        r, replies = traced(g, "continue")
        assert r.stop_reason == "watchpoint-trigger" and r.stop_thread == 2
        assert replies[0]["thread"] == "2" and reported_pc(replies[0]) == s.sym["tick_store"]
        assert r.stopped is not None and r.stopped["value"] == {"old": "0", "new": "1"}


def test_stepi_with_scheduler_locking_leaves_the_other_vcpu_where_it_was() -> None:
    """``vCont;s:N`` alone: the other vCPU stays stopped (without locking GDB sends
    ``vCont;s:N;c`` and the other vCPU runs meanwhile, as it should)."""
    with served("smp_tick", smp=VCPUS) as s, s.gdb() as g:
        g.check("break *tick")
        r = g.check("continue")
        me, other = r.stop_thread, 3 - r.stop_thread  # type: ignore[operator]
        other_pc = pc_of(g, other)
        g.check("delete")
        g.check("set scheduler-locking on")
        r = g.check("stepi")
        assert (r.stop_reason, r.stop_pc, r.stop_thread) == (
            "end-stepping-range",
            s.sym["tick"] + 4,
            me,
        )
        assert pc_of(g, other) == other_pc


@pytest.mark.parametrize("leave", ["detach", "sigkill"])
def test_after_gdb_leaves_both_vcpus_run_on_with_the_code_as_loaded_and_gdb_reattaches(
    leave: str,
) -> None:
    with served("smp_tick", smp=VCPUS) as s:
        g = s.gdb("set breakpoint always-inserted on")
        g.check("break *tick")
        g.check("continue")
        g.check("continue")
        if leave == "detach":
            assert "detached" in g.check("detach").console
            g.close()
        else:
            g.kill()
        s.wait_detached()
        assert s.code_changes() == []
        for vcpu in range(VCPUS):
            first, now = s.runs_on("counters", vcpu)
            assert now != first, f"vCPU {vcpu} does not run after {leave}"
        with s.gdb() as again:
            assert s.attached.stopped is not None
            threads = again.check("info threads").console
            assert "Thread 1 (vCPU 0 " in threads and "Thread 2 (vCPU 1 " in threads
            assert again.check("monitor points").target == "no points\n"
            again.check("break *tick")
            r = again.check("continue")
            assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", s.sym["tick"])


def test_continue_after_a_stepi_the_other_thread_cut_short_runs_the_guest() -> None:
    """``stepi`` on thread 2 with scheduler-locking off (``vCont;s:2;c``) while thread 1 runs
    into a hardware breakpoint; the breakpoint deleted, ``continue`` must run the guest. When
    the breakpoint was reported first, thread 2's step stayed queued and answered the next
    ``vCont;c`` at once: GDB printed "Thread 2 received signal SIGTRAP" and the guest never ran
    (the soak's "the guest did not run after continue", docs/reference/peers.md §10). Which
    of the two events comes first is the scheduler's: repeated until both orders were seen."""
    with served("smp_tick", smp=VCPUS) as s, s.gdb() as g:
        g.check("set scheduler-locking off")
        seen = set()
        for n in range(400):
            g.check("hbreak *tick_store")
            g.check("thread 2")
            stop = g.check("stepi")
            seen.add(stop.stop_reason)
            g.check("delete")
            g.send("continue")
            first, now = s.runs_on("counters")
            assert now != first, f"round {n}: the guest did not run after {stop.stopped}"
            g.interrupt()
            assert g.wait_stopped().get("signal-name") == "SIGINT"
            if len(seen) == 2 and n >= 20:
                break
        assert seen == {"end-stepping-range", "breakpoint-hit"}, seen
