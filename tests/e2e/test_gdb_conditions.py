"""Real GDB's ``break X if cond`` evaluated in the stub (issue 15): with gdb-multiarch's default
``breakpoint condition-evaluation auto`` GDB sends the condition as agent expressions in the
``Z0`` packet, and the stub stops exactly at the hits where it holds. The guest's own counter
(``counters[PIR]``, stored at ``tick_store``) is the independent witness: at a stop on
``tick_store`` r4 is the count about to be stored, so the hit number is r4 and the stored
count is r4 - 1; a hit the stub let through without judging (or a vCPU that slipped past the
trap word while another had it out) breaks the arithmetic."""

from __future__ import annotations

import re

from .served import NEEDS_GDB, served, traced

pytestmark = NEEDS_GDB


def r4(g: object) -> int:
    out = g.check("print/d $r4").console  # type: ignore[attr-defined]
    m = re.search(r"= (-?\d+)", out)
    assert m, out
    return int(m.group(1))


def point_line(g: object) -> str:
    """The point's counters (GDB has removed its points at the stop; the counts stay)."""
    out = g.check("monitor points").target  # type: ignore[attr-defined]
    lines = [x for x in out.splitlines() if x.strip().startswith("swbreak") and "hits=" in x]
    assert len(lines) == 1, out
    (line,) = lines
    return line


def test_gdb_sends_the_condition_and_the_stub_stops_only_where_it_holds() -> None:
    with served("smp_tick") as s, s.gdb() as g:
        g.check("break *tick_store if $r4 % 100 == 0")
        stops = []
        for n in range(3):
            r, _ = traced(g, "continue") if n == 0 else (g.check("continue"), [])
            if n == 0:
                z0 = re.search(rf"Z0,{s.sym['tick_store']:x},4;X([0-9a-f]+),", r.log)
                assert z0, "GDB did not send the condition with the breakpoint"
            assert r.stop_reason == "breakpoint-hit" and r.stop_pc == s.sym["tick_store"]
            stops.append((r4(g), s.word("counters")))
        assert stops == [(100, 99), (200, 199), (300, 299)]
        line = point_line(g)
        assert "hits=300 evaluations=300 stops=3 errors=0" in line, line
        assert "in_place" not in line, line  # a store: stepped past, never carried out


def test_a_condition_on_guest_memory() -> None:
    with served("smp_tick") as s, s.gdb() as g:
        counters = s.sym["counters"]
        g.check(f"break *tick if *(int *){counters:#x} == 41")
        r = g.check("continue")
        assert r.stop_reason == "breakpoint-hit" and r.stop_pc == s.sym["tick"]
        assert s.word("counters") == 41
        assert "evaluations=42 stops=1" in point_line(g)


def test_a_condition_that_cannot_be_evaluated_stops_at_the_breakpoint() -> None:
    """A read outside guest RAM: the first hit stops (the user sees the breakpoint) and
    ``monitor points`` says why."""
    with served("smp_tick") as s, s.gdb() as g:
        g.check("break *tick if *(int *)0xfff00000 == 7")
        r = g.check("continue")
        assert r.stop_reason == "breakpoint-hit" and r.stop_pc == s.sym["tick"]
        assert s.word("counters") == 0
        line = point_line(g)
        assert "errors=1" in line and "0xfff00000" in line, line


def test_a_changed_condition_replaces_the_old_one() -> None:
    """GDB sends ``Z0`` again (no ``z0``) when a condition changes; the stub replaces it."""
    with served("smp_tick") as s, s.gdb() as g:
        g.check("break *tick_store if $r4 == 5")
        assert g.check("continue").stop_pc == s.sym["tick_store"] and r4(g) == 5
        g.check("condition 1 $r4 == 9")
        assert g.check("continue").stop_pc == s.sym["tick_store"] and r4(g) == 9
        g.check("condition 1")
        assert g.check("continue").stop_pc == s.sym["tick_store"] and r4(g) == 10
        assert "hits=10 evaluations=9 stops=3" in point_line(g)  # the 10th: no condition


def test_on_two_vcpus_each_stop_is_where_that_vcpus_condition_holds() -> None:
    """Both vCPUs pass the same trap word; each thread's stops run 20, 40, 60... of its own
    count, with no gap: none lost while the other vCPU stepped past the point alone."""
    with served("smp_tick", smp=2) as s, s.gdb() as g:
        g.check("break *tick_store if $r4 % 20 == 0")
        seen: dict[int, list[int]] = {1: [], 2: []}
        for _ in range(300):  # a hang guard: which vCPU gets there first is the scheduler's
            if min(len(v) for v in seen.values()) >= 3:
                break
            r = g.check("continue")
            assert r.stop_pc == s.sym["tick_store"]
            assert r.stop_thread in seen
            seen[r.stop_thread].append(r4(g))
        for thread, values in seen.items():
            assert values == [20 * (k + 1) for k in range(len(values))], (thread, values)


def test_a_condition_on_a_register_only_instruction_is_passed_in_place() -> None:
    """At ``tick+4`` (``addi r4,r4,1``) the arch carries out the instruction itself for every
    false hit (no step): the stops still come exactly where the condition holds, the guest's
    counter says no call was lost or doubled, and ``monitor points`` counts every false hit as
    passed in place."""
    with served("smp_tick") as s, s.gdb() as g:
        g.check(f"break *{s.sym['tick'] + 4:#x} if $r4 % 100 == 99")
        stops = []
        for _ in range(3):
            r = g.check("continue")
            assert r.stop_reason == "breakpoint-hit" and r.stop_pc == s.sym["tick"] + 4
            stops.append((r4(g), s.word("counters")))
        # r4 is the count loaded before this call's increment: call N stops with r4 = N - 1
        assert stops == [(99, 99), (199, 199), (299, 299)]
        line = point_line(g)
        assert "hits=300 evaluations=300 stops=3 errors=0 in_place=297" in line, line


def test_on_two_vcpus_a_register_only_instruction_is_passed_in_place() -> None:
    """Both vCPUs pass the same trap word with it never leaving memory (no vCPU is held
    while another steps past it): each thread's stops run 19, 39, 59... of its own count."""
    with served("smp_tick", smp=2) as s, s.gdb() as g:
        g.check(f"break *{s.sym['tick'] + 4:#x} if $r4 % 20 == 19")
        seen: dict[int, list[int]] = {1: [], 2: []}
        for _ in range(300):  # a hang guard: which vCPU gets there first is the scheduler's
            if min(len(v) for v in seen.values()) >= 3:
                break
            r = g.check("continue")
            assert r.stop_pc == s.sym["tick"] + 4
            assert r.stop_thread in seen
            seen[r.stop_thread].append(r4(g))
        for thread, values in seen.items():
            assert values == [20 * (k + 1) - 1 for k in range(len(values))], (thread, values)
        assert "in_place=" in point_line(g)
