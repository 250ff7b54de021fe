"""Real gdb-multiarch against a guest that rewrites the code under its breakpoint (issue 16):
the loader guest (tests/guests/ppc/booke_loader.S) copies `template` over `dest_fn` and calls
it, three rounds. The emulated e500mc host, like Linux BookE KVM, cannot catch the guest's
stores (docs/reference/kvm-debug-abi.md §11): guestdbg finds the rewrite at the next stop,
re-arms and says so on GDB's console; a breakpoint the user puts in a hardware slot keeps
every hit."""

from __future__ import annotations

import re

from .served import NEEDS_GDB, Served, served, traced

pytestmark = NEEDS_GDB
RESULT = (3 << 16) | (7 + 10 + 13)
"""The guest's result when every round ran the copied code (an undebugged run's:
tests/session/test_rewrites.py)."""


def stop(r: object) -> tuple[str | None, int | None]:
    return r.stop_reason, r.stop_pc  # type: ignore[attr-defined]


def notice_re(s: Served) -> str:
    return (
        rf"guestdbg: the guest rewrote the code under the breakpoint at {s.sym['dest_fn']:#x} "
        r"\(now [0-9a-f]{8}, was [0-9a-f]{8}\); re-armed over the new instruction"
    )


def test_the_rewrite_is_reported_at_the_next_stop_and_the_rearmed_breakpoint_stops_the_call() -> (
    None
):
    with served("booke_loader") as s, s.gdb() as g:
        dest, copied = s.sym["dest_fn"], s.sym["copied"]
        g.check("break *dest_fn")
        g.check("break *copied")
        r = g.check("continue")
        assert stop(r) == ("breakpoint-hit", copied)
        assert re.search(notice_re(s), r.text), r.text
        assert f"monitor hwbreak {dest:#x}" in r.text
        points = g.check("monitor points").target
        assert re.search(rf"swbreak {dest:#x} hits=0 rewritten=1", points), points
        assert stop(g.check("continue")) == ("breakpoint-hit", dest)
        # what GDB shows at dest_fn is the copied code, not the trap word nor the old code
        assert "mulli" in g.check("x/i $pc").console


def test_without_a_hardware_slot_a_rewrite_between_stops_loses_every_round() -> None:
    """Only `break dest_fn`: each round's copy lands after the trap went in and before the
    call, and there is no stop in between to re-arm it, so GDB sees none of the three calls;
    the stop at the end says why. The guest's result is unaffected."""
    with served("booke_loader") as s, s.gdb() as g:
        g.check("break *dest_fn")
        g.check("break *finished")
        r = g.check("continue")
        assert stop(r) == ("breakpoint-hit", s.sym["finished"])
        assert re.search(notice_re(s), r.text), r.text
        assert s.word("result") == RESULT


def test_monitor_hwbreak_keeps_every_rounds_call_and_the_result_is_an_undebugged_runs() -> None:
    with served("booke_loader") as s, s.gdb() as g:
        dest = s.sym["dest_fn"]
        pristine = s.view.read(dest, 12)
        out = g.check(f"monitor hwbreak {dest:#x}").target
        assert "served by a hardware instruction compare" in out
        g.check("break *dest_fn")
        g.check("break *finished")
        for _ in range(3):
            r, replies = traced(g, "continue")
            assert stop(r) == ("breakpoint-hit", dest)
            assert r.stopped is not None and r.stopped["bkptno"] == "1"
            assert "hwbreak" in replies[-1]  # the IAC's stop, accepted for GDB's Z0
            assert "guestdbg:" not in r.text
        assert s.view.read(dest, 12) != pristine  # the guest copied its code there
        assert stop(g.check("continue")) == ("breakpoint-hit", s.sym["finished"])
        assert s.word("result") == RESULT


def test_the_hw_policy_moves_the_breakpoint_to_a_compare_at_the_first_rewrite() -> None:
    with served("booke_loader") as s, s.gdb() as g:
        dest, copied = s.sym["dest_fn"], s.sym["copied"]
        assert g.check("monitor rewrites hw").target == "rewrites hw\n"
        g.check("break *dest_fn")
        g.check("break *copied")
        r = g.check("continue")
        assert stop(r) == ("breakpoint-hit", copied)
        assert "moved to a hardware instruction compare" in r.text, r.text
        assert g.check("monitor hwbreak").target == f"hwbreak {dest:#x}\n"
        pcs = [stop(g.check("continue")) for _ in range(5)]
        assert pcs == [("breakpoint-hit", dest), ("breakpoint-hit", copied)] * 2 + [
            ("breakpoint-hit", dest)
        ]
        g.check("delete")
        g.check("break *finished")
        g.check("continue")
        assert s.word("result") == RESULT
