"""Conditions compiled by the real gdb-multiarch, run by the interpreter, against GDB's own
answer.

GDB compiles each condition below to bytecode and sends it with the breakpoint's ``Z0`` packet
(taken off the wire by :class:`gdb_capture.ConditionTap`); it also lists the same bytecode
(``maint agent-eval``) and evaluates the condition itself (``print``). The interpreter must
read GDB's bytes back to GDB's listing and, on the same registers and memory, compute GDB's
value. So the encoding, the opcode numbers and the semantics are all checked against GDB, not
against this project's reading of the manual.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from gdb_capture import ConditionTap, run_gdb
from memtarget import MemTarget

from guestdbg.conditions import disassemble, evaluate, parse_agent_expr
from guestdbg.gdb.server import GdbServer

pytestmark = [
    pytest.mark.gdb,
    pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch"),
]

CONDITIONS = (
    "$r3 == 5",
    "*(int*)0x1100 == 42 && $r4 < -3",
    "$r3 != 5 || *(unsigned char*)0x1108 == 0x7f",
    "(int)$r4 < -3",
    "(int)$r4 > -17",
    "(int)$r3 <= 5 && (int)$r3 >= 5",
    "((long long)(int)$r5 >> 4) == -134217728",
    "((unsigned)$r4 >> 28) == 15",
    "($r3 << 3) == 40",
    "(int)$r3 * 7 / 2 == 17",
    "(int)$r4 / 3 == -5",
    "(int)$r4 % 3 == -1",
    "(unsigned)$r4 / 3 == 1431655760",
    "(unsigned)$r4 % 7 == 2",
    "($r3 & 4) && ($r3 | 8) == 13 && ($r3 ^ 1) == 4",
    "~(int)$r3 == -6",
    "!$r6",
    "!$r3",
    "*(short*)0x1104 == -8531",
    "*(unsigned short*)0x1104 == 0xdead",
    "*(long long*)0x1100 == 0x2adeadbeef",
    "*(long long*)0x1100 == 0x0000002adeadbeefLL",
    "(int)$r3 - 10 < 0",
    "((int)$r3 > 4 ? (int)$r4 : (int)$r5) == -16",
    "*(char*)($r7 - 0x10) == 0x7f",
    "$r5 == 0x80000000",
    "(long long)$r3 == 0x123456789LL",
    "$pc == 0x1000",
    "$r3 == 5 && $r4 == 0xfffffff0 && $r5 != 0",
    "(signed char)*(unsigned char*)0x1108 == 127",
    "*(int*)(0x1100 + 4 * (int)$r6) == -559038737",
)
BREAK_AT = 0x1400
"""Breakpoint i is at BREAK_AT + 4 * i (never reached: the guest does not run)."""


def _memory(target: MemTarget) -> None:
    base = target.base
    target.memory[0x1100 - base : 0x1109 - base] = bytes.fromhex("0000002adeadbeef7f")
    target.regs[0][3] = 5
    target.regs[0][4] = 0xFFFFFFF0
    target.regs[0][5] = 0x80000000
    target.regs[0][6] = 1
    target.regs[0][7] = 0x1118


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[MemTarget, dict[int, bytes], str]]:
    target = MemTarget()
    _memory(target)
    commands = ["set breakpoint always-inserted on"]
    for i, cond in enumerate(CONDITIONS):
        commands.append(f"break *{BREAK_AT + 4 * i:#x} if {cond}")
    for i, cond in enumerate(CONDITIONS):
        commands += [f"echo ==={i}===\\n", f"maint agent-eval {cond}", f"print/d ({cond})"]
    commands.append("detach")
    with GdbServer(target, ("127.0.0.1", 0)) as srv:
        srv.start()
        assert isinstance(srv.bound_address, tuple)
        tap = ConditionTap(srv.bound_address)
        out = run_gdb(tap.port, *commands)
        tap.close()
    target.running = False  # the detach let it run; the interpreter reads what GDB read
    _memory(target)
    yield target, dict(tap.conditions), out


def _gdb_answer(out: str, i: int) -> tuple[list[str], int]:
    """GDB's listing of condition ``i`` (its instruction lines) and its value."""
    part = out.split(f"==={i}===\n", 1)[1].split("===", 1)[0]
    listing = [line for line in part.splitlines() if re.match(r"^\s*\d+  \w", line)]
    value = re.search(r"^\$\d+ = (-?\d+)$", part, re.M)
    assert value, part
    return listing, int(value.group(1))


@pytest.mark.parametrize("i", range(len(CONDITIONS)), ids=CONDITIONS)
def test_gdb_bytecode_reads_back_to_gdbs_listing_and_computes_gdbs_value(
    session: tuple[MemTarget, dict[int, bytes], str], i: int
) -> None:
    target, sent, out = session
    code = sent.get(BREAK_AT + 4 * i)
    assert code is not None, f"GDB sent no bytecode for {CONDITIONS[i]!r}:\n{out}"
    listing, value = _gdb_answer(out, i)
    expr = parse_agent_expr(code)
    assert disassemble(expr) == listing
    got = evaluate(
        expr,
        target.regs[0].__getitem__,
        lambda a, n: bytes(target.memory[a - target.base : a - target.base + n]),
        big_endian=True,
        addr_bits=32,
    )
    assert got == value, f"{CONDITIONS[i]!r}: GDB says {value}, the interpreter {got}"


def test_the_conditions_cover_both_answers_and_every_opcode_but_four_stack_ones(
    session: tuple[MemTarget, dict[int, bytes], str],
) -> None:
    _, sent, out = session
    values = {_gdb_answer(out, i)[1] for i in range(len(CONDITIONS))}
    assert values == {0, 1}
    used = {insn.op.name.lower() for code in sent.values() for insn in parse_agent_expr(code).insns}
    assert used >= {"add", "sub", "mul", "div_signed", "div_unsigned", "rem_signed",
                    "rem_unsigned", "lsh", "rsh_signed", "rsh_unsigned", "log_not", "bit_and",
                    "bit_or", "bit_xor", "bit_not", "equal", "less_signed", "less_unsigned",
                    "ext", "zero_ext", "ref8", "ref16", "ref32", "ref64", "if_goto", "goto",
                    "const8", "const16", "const32", "const64", "reg", "end", "swap"}  # fmt: skip
    assert not used & {"dup", "pop", "pick", "rot"}  # test_semantics.py has those
