"""Stops GDB did not ask for by a breakpoint (Ctrl-C, a new debugger attaching to a running
guest, the all-stop kick of the other vCPUs) must still be at an instruction boundary: the
instruction at the reported PC has not run, everything before it has. Otherwise resuming runs
it twice (a store repeated after another vCPU wrote there is a lost update)."""

from __future__ import annotations

import re

from .served import NEEDS_GDB, served

pytestmark = NEEDS_GDB
INTERRUPTS = 12


def state_at_stop(g: object, s: object) -> tuple[int, int, int, int]:
    regs = g.check("info registers pc r4 r5").console  # type: ignore[attr-defined]
    values = dict(re.findall(r"^(\w+)\s+(0x[0-9a-f]+)", regs, re.M))
    count = s.word("count")  # type: ignore[attr-defined]
    return int(values["pc"], 16), int(values["r4"], 16), int(values["r5"], 16), count


def test_a_ctrl_c_stop_is_at_an_instruction_boundary() -> None:
    with served("precise_stop") as s, s.gdb() as g:
        loop, hit, tail = s.sym["loop"], s.sym["hit"], s.sym["tail"]
        expected = {
            loop: lambda r4, r5, count: r4 == r5 == count,
            hit: lambda r4, r5, count: r4 == r5 + 1 and count == r4 - 1,
            tail: lambda r4, r5, count: r4 == r5 + 1 and count == r4,
            tail + 4: lambda r4, r5, count: r4 == r5 == count,
        }
        wrong = []
        for _ in range(INTERRUPTS):
            g.send("continue")
            s.runs_on("count")
            g.interrupt()
            assert g.wait_stopped()["signal-name"] == "SIGINT"
            pc, r4, r5, count = state_at_stop(g, s)
            if not expected[pc](r4, r5, count):
                wrong.append(f"pc={pc:#x} r4={r4} r5={r5} count={count}")
        assert wrong == []
