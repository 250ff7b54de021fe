"""Range stepping through the real GDB: ``next`` and ``step`` over source lines of many
instructions (``tests/e2e/guests/range_lines.S``, assembled with ``as -g``).

GDB range-steps a line when ``vCont?`` offers ``r`` (and ``set range-stepping`` is on, its
default): one ``vCont;r<start>,<end>`` and one stop reply per line instead of one ``vCont;s``
per instruction. Where GDB ends is checked against the ELF's own line table (binutils'
``objdump --dwarf=decodedline``), and, for the line whose system call enters the guest's
handler, against the same GDB commands with ``set range-stepping off``.
"""

from __future__ import annotations

import functools
import itertools
import re
import subprocess

import pytest

from guestdbg.demo.gdbmi import GdbMi

from .served import GUESTS, NEEDS_GDB, elf, served, traced

pytestmark = NEEDS_GDB

GUEST = "range_lines"
SOURCE = GUESTS / f"{GUEST}.S"
OBJDUMP = "powerpc-linux-gnu-objdump"


@functools.cache
def lines() -> dict[str, tuple[int, int]]:
    """``# line: name`` marker -> [start, end) of that source line's code, from the ELF's
    DWARF line table."""
    numbers = {}
    for n, text in enumerate(SOURCE.read_text().splitlines(), 1):
        found = re.search(r"# line: (\w+)", text)
        if found:
            numbers[n] = found.group(1)
    out = subprocess.run(
        [OBJDUMP, "--dwarf=decodedline", str(elf(GUEST, True))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = re.findall(rf"^{SOURCE.name}\s+(\d+|-)\s+(0x[0-9a-f]+)", out, re.M)
    table = [(int(a, 16), None if n == "-" else int(n)) for n, a in rows]
    spans = {}
    for (addr, n), (nxt, _) in itertools.pairwise(table):
        if n in numbers:
            spans[numbers[n]] = (addr, nxt)
    assert set(spans) == set(numbers.values()), "every marked line has code"
    return spans


def vconts(log: str) -> list[str]:
    return re.findall(r"Sending packet: \$(vCont;[^#]*)#", log)


def run_to(g: GdbMi, line: str) -> None:
    g.check(f"tbreak *{lines()[line][0]:#x}")
    r = g.check("continue")
    assert r.stop_pc == lines()[line][0]


@pytest.mark.parametrize("command", ["next", "step"])
def test_a_line_of_many_instructions_is_one_range_step_to_the_next_line(command: str) -> None:
    span = lines()
    assert span["a"][1] - span["a"][0] >= 50 * 4 and span["b"][1] - span["b"][0] >= 50 * 4
    with served(GUEST, debug_lines=True) as s, s.gdb() as g:
        run_to(g, "a")
        for line, following in (("a", "b"), ("b", "sc")):
            r, stops = traced(g, command)
            assert (r.stop_reason, r.stop_pc) == ("end-stepping-range", span[following][0])
            start, end = span[line]
            assert vconts(r.log) == [f"vCont;r{start:x},{end:x}:1;c"], "one range, all of it"
            assert len(stops) == 1
        assert s.word("calls") == 0


def test_a_breakpoint_inside_the_line_stops_the_range_step_there() -> None:
    start, end = lines()["b"]
    mid = start + 4 * 33
    with served(GUEST, debug_lines=True) as s, s.gdb() as g:
        run_to(g, "b")
        g.check(f"break *{mid:#x}")
        r, stops = traced(g, "next")
        assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", mid)
        assert vconts(r.log) == [f"vCont;r{start:x},{end:x}:1;c"] and len(stops) == 1
        r = g.check("next")  # the rest of the line, from the breakpoint
        assert (r.stop_reason, r.stop_pc) == ("end-stepping-range", end)


def nexts_over_the_sc_line(range_stepping: str) -> tuple[list[tuple[str, int]], list[int], int]:
    """``next`` from the start of the ``sc`` line until GDB is on the line after it: GDB's
    stops (reason, PC), the guest's ``calls`` after each, and the range steps GDB sent."""
    with served(GUEST, debug_lines=True) as s, s.gdb(f"set range-stepping {range_stepping}") as g:
        run_to(g, "sc")
        stops: list[tuple[str, int]] = []
        calls = []
        ranges = 0
        while not stops or stops[-1][1] != lines()["c"][0]:
            assert len(stops) < 20, f"GDB never got past the sc line: {stops}"
            r, _ = traced(g, "next")
            ranges += sum(v.startswith("vCont;r") for v in vconts(r.log))
            stops.append((str(r.stop_reason), int(r.stop_pc)))
            calls.append(s.word("calls"))
        return stops, calls, ranges


def test_a_system_call_inside_the_line_reaches_the_guests_handler_as_without_range_steps() -> None:
    """The ``sc`` amid the line enters the guest's handler (the range step ends there, as the
    single step that executes it ends there); GDB goes on from the handler back into the
    line and to the next one exactly as it does when it single-steps every instruction."""
    stops, calls, ranges = nexts_over_the_sc_line("on")
    reference, ref_calls, ref_ranges = nexts_over_the_sc_line("off")
    assert ref_ranges == 0 and ranges >= len(stops)
    assert stops == reference
    assert calls == ref_calls and calls[-1] == 1, "the handler ran, once"
    handler = lines()["handler"][0]
    assert stops[0] == ("end-stepping-range", handler), "the first next ends in the handler"
