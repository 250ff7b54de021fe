"""The guest's own exceptions under a real GDB: never lost, never doubled, never shown to GDB
as the host's. GDB's client skips a guest ``tw`` under a breakpoint instead of executing it, and
the guest loses its program interrupt (docs/reference/peers.md §1.5, docs/stepping.md); here a
step over a trapping instruction lands in the guest's handler, and the guest's own
breakpoint word (BUG()) that exits because host breakpoints are armed is handed back to it."""

from __future__ import annotations

import json
import time

from guestdbg_booke.regs import ESR_PIL, ESR_PTR

from .served import NEEDS_GDB, served, traced

pytestmark = NEEDS_GDB


def test_stepi_over_a_tw_lands_in_the_guests_handler_which_counts_it_once() -> None:
    with served("demo") as s, s.gdb() as g:
        g.check("break *guest_trap")
        g.check("continue")
        g.check("delete")
        r = g.check("stepi")
        # the IC event comes once the handler's first instruction completed (docs/stepping.md)
        assert (r.stop_reason, r.stop_pc, r.stop_thread) == (
            "end-stepping-range",
            s.sym["program_handler"] + 4,
            1,
        )
        g.check("break *round_done")
        g.check("continue")
        assert (s.word("traps"), s.word("bugs"), s.word("last_esr")) == (1, 0, ESR_PTR)


def test_stepi_over_the_guests_own_breakpoint_word_lands_in_its_handler() -> None:
    with served("demo") as s, s.gdb() as g:
        g.check("set var *(int *)&bug_every = 1")
        g.check("break *guest_bug")
        g.check("continue")
        g.check("delete")
        r = g.check("stepi")
        assert (r.stop_reason, r.stop_pc) == ("end-stepping-range", s.sym["program_handler"] + 4)
        g.check("break *round_done")
        r = g.check("continue")
        assert r.stop_pc == s.sym["round_done"]
        assert (s.word("bugs"), s.word("last_esr")) == (1, ESR_PIL)


def test_the_guests_breakpoint_word_is_reinjected_once_per_execution_while_gdb_runs() -> None:
    """GDB inserts its breakpoints at every resume, so KVM_GUESTDBG_USE_SW_BP is on while the
    guest runs and each of the guest's own words leaves KVM_RUN: each must reach the guest's
    handler exactly once, with ESR[PIL], and never stop GDB."""
    with served("demo") as s, s.gdb() as g:
        g.check("set var *(int *)&bug_every = 1")
        g.check("break *round_done")
        for n in range(1, 6):
            r = g.check("continue")
            assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", s.sym["round_done"])
            assert s.word("bugs") == n
        assert s.word("last_esr") == ESR_PIL  # the word comes after the round's tw
        assert s.word("traps") == 1  # round 3's tw: the kernel's to deliver, never an exit
        stats = json.loads(g.check("monitor stats").target)["filter"]
        assert stats["reinjected"] == 5 and stats["by_reason"]["swbreak"] == 5


def test_monitor_catch_on_stops_before_the_guests_own_event_is_delivered() -> None:
    with served("demo") as s, s.gdb() as g:
        g.check("set var *(int *)&bug_every = 1")
        g.check("break *round_done")
        assert g.check("monitor catch on").target == "catch on\n"
        r, replies = traced(g, "continue")
        assert (r.stop_reason, r.stop_pc) == ("signal-received", s.sym["guest_bug"])
        assert r.stopped is not None and r.stopped["signal-name"] == "SIGTRAP"
        assert replies[-1]["signal"] == "05" and s.word("bugs") == 0
        r = g.check("continue")  # delivered now, once
        assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", s.sym["round_done"])
        assert s.word("bugs") == 1


def test_ctrl_c_stops_the_running_guest_with_sigint() -> None:
    with served("demo") as s, s.gdb() as g:
        g.send("continue")
        first, now = s.runs_on("rounds")
        assert now != first
        time.sleep(0.01)
        g.interrupt()
        stopped = g.wait_stopped()
        assert stopped["reason"] == "signal-received" and stopped["signal-name"] == "SIGINT"
        assert stopped["thread-id"] == "1"
        pc = int(stopped["frame"]["addr"], 16)
        text = min(s.view.code)
        assert text <= pc < text + len(s.view.code[text])
        r = g.check("info registers pc")
        assert f"{pc:#x}" in r.console
        progress = s.word("rounds")
        g.check("stepi")
        assert s.word("rounds") - progress in (0, 1)  # stopped: one instruction, not a run
