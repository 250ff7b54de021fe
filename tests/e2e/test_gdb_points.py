"""Real gdb-multiarch against ``GdbServer(Session(vm, "e500mc"))`` on the emulated e500mc host,
one vCPU, the shipped demo guest: every stop's PC, thread and reason, as GDB shows it and as
the stub's stop reply said it (``set debug remote 1``)."""

from __future__ import annotations

import json
import re

import pytest

from .served import NEEDS_GDB, reported_pc, served, traced

pytestmark = NEEDS_GDB
TRAP_WORD = bytes.fromhex("00dddd00")
"""What KVM_REG_PPC_DEBUG_INST reports on the emulated e500mc host
(docs/reference/kvm-debug-abi.md §3.5)."""


def stop(r: object) -> tuple[str | None, int | None, int | None]:
    return r.stop_reason, r.stop_pc, r.stop_thread  # type: ignore[attr-defined]


def test_break_reports_its_pc_and_thread_and_reads_show_the_original_word() -> None:
    with served("demo") as s, s.gdb("set breakpoint always-inserted on") as g:
        work = s.sym["work"]
        g.check("break *work")
        r, replies = traced(g, "continue")
        assert stop(r) == ("breakpoint-hit", work, 1)
        assert replies[-1]["thread"] == "1" and "swbreak" in replies[-1]
        assert reported_pc(replies[-1]) == work
        assert s.view.read(work, 4) == TRAP_WORD  # inserted: the trap is in guest RAM
        shown = g.check("x/2xw work").console
        first, second = s.view.original_word(work), s.view.original_word(work + 4)
        assert re.search(rf"0x{first.hex()}\s+0x{second.hex()}", shown), shown
        assert "0x00dddd00" not in g.check("x/8xw main_loop").console


def test_stepi_runs_one_instruction_on_the_same_thread() -> None:
    with served("demo") as s, s.gdb() as g:
        work = s.sym["work"]
        g.check("break *work")
        g.check("continue")
        assert stop(g.check("stepi")) == ("end-stepping-range", work + 4, 1)
        assert stop(g.check("stepi")) == ("end-stepping-range", work + 8, 1)
        assert re.search(rf"^pc\s+{work + 8:#x}\s", g.check("info registers pc").console, re.M)


def test_hbreak_stops_there_and_leaves_guest_code_untouched() -> None:
    with served("demo") as s, s.gdb("set breakpoint always-inserted on") as g:
        target = s.sym["round_done"]
        g.check("hbreak *round_done")
        assert s.code_changes() == []
        r, replies = traced(g, "continue")
        assert stop(r) == ("breakpoint-hit", target, 1)
        assert "hwbreak" in replies[-1] and reported_pc(replies[-1]) == target
        assert s.code_changes() == []


def test_watch_reports_the_storing_instruction_as_the_hardware_does() -> None:
    """The DAC event comes before the store completes, so the stub names the store's PC; GDB's
    PowerPC target then steps it once and shows the next instruction (QEMU's stop comes one
    instruction later still, docs/reference/peers.md §1.5)."""
    with served("demo") as s, s.gdb() as g:
        store, rounds = s.sym["rounds_store"], s.sym["rounds"]
        g.check("watch *(int *)&rounds")
        r, replies = traced(g, "continue")
        assert r.stop_reason == "watchpoint-trigger" and r.stop_thread == 1
        assert replies[0]["watch"] == f"{rounds:x}" and reported_pc(replies[0]) == store
        assert r.stop_pc == store + 4
        assert r.stopped is not None and r.stopped["value"] == {"old": "0", "new": "1"}
        assert s.word("rounds") == 1


def test_rwatch_reports_the_loading_instruction() -> None:
    with served("demo") as s, s.gdb() as g:
        load = s.sym["rounds_load"]
        g.check("rwatch *(int *)&rounds")
        r, replies = traced(g, "continue")
        assert r.stop_reason == "read-watchpoint-trigger" and r.stop_thread == 1
        assert "rwatch" in replies[0] and reported_pc(replies[0]) == load
        assert r.stop_pc == load + 4
        assert s.word("rounds") == 0  # stopped between the load and the store


def test_awatch_reports_the_read_then_the_write() -> None:
    with served("demo") as s, s.gdb() as g:
        load, store = s.sym["rounds_load"], s.sym["rounds_store"]
        g.check("awatch *(int *)&rounds")
        pcs = []
        for _ in range(3):
            r, replies = traced(g, "continue")
            assert r.stop_reason == "access-watchpoint-trigger" and r.stop_thread == 1
            assert "awatch" in replies[0]
            pcs.append(reported_pc(replies[0]))
        assert pcs == [load, store, load]
        assert s.word("rounds") == 1


@pytest.mark.parametrize("inserted", ["on", "off"])
def test_third_hbreak_and_third_watchpoint_are_refused_cleanly_and_nothing_changes(
    inserted: str,
) -> None:
    """e500 has 2 IACs and 2 DACs. GDB inserts at once with always-inserted, else at the next
    resume; either way the refusal is GDB's error message, the two points stay, the guest
    does not run, and the session goes on as if the third had never been asked for."""
    with served("demo") as s, s.gdb(f"set breakpoint always-inserted {inserted}") as g:
        g.check("hbreak *work")
        g.check("hbreak *round_done")
        third = g.run("hbreak *main_loop")
        if inserted == "off":
            assert third.ok
            third = g.run("continue")
            assert third.stopped is None
        assert not third.ok
        # the stub's E.1c.<reason>: GDB prints the reason for a hardware breakpoint
        assert re.search(
            r"Cannot insert hardware breakpoint \d:Remote failure reply: all 2 hardware "
            r"breakpoint slots are in use; cannot add hwbreak mem:0x[0-9a-f]+/4\.",
            third.log,
        ), third.log
        assert s.word("rounds") == 0 and s.code_changes() == []
        g.check("delete 3")
        g.check("watch *(int *)&total")
        g.check("watch *(int *)&rounds")
        third = g.run("watch *(int *)&traps")
        if inserted == "off":
            third = g.run("continue")
        assert not third.ok
        assert re.search(r"Could not insert hardware watchpoint \d\.", third.log), third.log
        points = g.check("monitor points").target.splitlines()
        assert sorted(p.split()[0] for p in points) == ["hwbreak", "hwbreak", "watch", "watch"]
        assert s.word("rounds") == 0
        g.check("delete 6")
        r = g.check("continue")  # the four points that fit work
        assert stop(r) == ("breakpoint-hit", s.sym["work"], 1)


def test_info_registers_x_and_set_var_read_and_write_the_guest() -> None:
    with served("demo") as s, s.gdb() as g:
        g.check("break *round_done")
        g.check("continue")
        regs = g.check("info registers pc msr lr r1 r31").console
        assert re.search(rf"^pc\s+{s.sym['round_done']:#x}\s", regs, re.M), regs
        assert re.search(rf"^r31\s+{s.sym['total']:#x}\s", regs, re.M), regs  # &vars
        assert re.search(rf"^lr\s+{s.sym['main_loop'] + 8:#x}\s", regs, re.M), regs  # bl work
        total = g.check("x/1dw &total").console
        assert re.search(r":\s+5050\s*$", total, re.M), total
        g.check("set var *(int *)&trap_every = 1000")
        assert s.word("trap_every") == 1000
        g.check("set var $r20 = 0x1234")
        assert re.search(r"^r20\s+0x1234\s", g.check("info registers r20").console, re.M)
        g.check("delete")
        g.check("break *program_handler")  # r20 is the handler's: it must see what GDB wrote
        g.check("set var *(int *)&bug_every = 1")
        r = g.check("continue")
        assert stop(r) == ("breakpoint-hit", s.sym["program_handler"], 1)
        assert re.search(r"^r20\s+0x1234\s", g.check("info registers r20").console, re.M)


def test_monitor_help_stats_and_points() -> None:
    with served("demo") as s, s.gdb("set breakpoint always-inserted on") as g:
        helptext = g.check("monitor help").target
        for command in ("help", "points", "stats"):
            assert re.search(rf"^{command}\s", helptext, re.M), helptext
        g.check("break *work")
        g.check("hbreak *round_done")
        g.check("watch *(int *)&rounds")
        points = g.check("monitor points").target
        assert f"swbreak {s.sym['work']:#x}" in points
        assert f"hwbreak {s.sym['round_done']:#x}" in points
        assert f"watch {s.sym['rounds']:#x} len=4" in points
        g.check("continue")
        stats = json.loads(g.check("monitor stats").target)
        assert stats["filter"]["reported"] == 1 and stats["filter"]["reinjected"] == 0
        refused = g.run("monitor shell ls")
        assert not refused.ok and "unknown monitor command 'shell'" in refused.target
