"""Every opcode a condition may use, by what GDB's manual says it computes.

The expected values are written out by hand (C's 64-bit arithmetic on the named operands), not
computed by the code under test; each case runs both ways an expression can run (the generated
function and the handler loop, ``asm.both``), which must agree. GDB's own bytecode and values
are checked in ``test_gdb_bytecode.py``.
"""

from __future__ import annotations

import pytest
from asm import M, Ram, asm, both, run

from guestdbg.conditions import EvalError, parse_agent_expr

NEG = lambda v: v & M  # noqa: E731  (a negative number as the 64-bit pattern the stack holds)


def c64(v: int) -> str:
    return f"const64 {v & M}"


BINARY = [
    # (opcode, a, b, a OP b)  -- a pushed first, so b is on top
    ("add", 2, 3, 5),
    ("add", M, 2, 1),  # wraps
    ("add", 1 << 63, 1 << 63, 0),
    ("sub", 2, 3, NEG(-1)),
    ("sub", 0, 1, M),
    ("mul", 6, 7, 42),
    ("mul", 1 << 32, 1 << 32, 0),  # wraps
    ("mul", NEG(-3), 5, NEG(-15)),
    ("div_signed", 7, 2, 3),
    ("div_signed", NEG(-7), 2, NEG(-3)),  # truncates toward zero
    ("div_signed", 7, NEG(-2), NEG(-3)),
    ("div_signed", NEG(-7), NEG(-2), 3),
    ("div_signed", 1 << 63, M, 1 << 63),  # INT64_MIN / -1 wraps to INT64_MIN
    ("div_unsigned", M, 2, M >> 1),
    ("div_unsigned", NEG(-7), 2, (M - 6) // 2),
    ("rem_signed", 7, 3, 1),
    ("rem_signed", NEG(-7), 3, NEG(-1)),  # the sign of the dividend
    ("rem_signed", 7, NEG(-3), 1),
    ("rem_signed", 1 << 63, M, 0),
    ("rem_unsigned", NEG(-7), 10, (M - 6) % 10),
    ("lsh", 1, 4, 16),
    ("lsh", 3, 63, 1 << 63),
    ("lsh", 1, 64, 0),
    ("lsh", 1, M, 0),
    ("rsh_signed", NEG(-16), 2, NEG(-4)),
    ("rsh_signed", 16, 2, 4),
    ("rsh_signed", NEG(-1), 200, M),
    ("rsh_signed", 1 << 62, 100, 0),
    ("rsh_unsigned", NEG(-16), 60, 15),
    ("rsh_unsigned", M, 64, 0),
    ("bit_and", 0b1100, 0b1010, 0b1000),
    ("bit_or", 0b1100, 0b1010, 0b1110),
    ("bit_xor", 0b1100, 0b1010, 0b0110),
    ("equal", 5, 5, 1),
    ("equal", 5, 6, 0),
    ("equal", M, NEG(-1), 1),
    ("less_signed", NEG(-1), 0, 1),
    ("less_signed", 0, NEG(-1), 0),
    ("less_signed", 1 << 63, (1 << 63) - 1, 1),
    ("less_signed", 3, 3, 0),
    ("less_unsigned", NEG(-1), 0, 0),
    ("less_unsigned", 0, NEG(-1), 1),
    ("less_unsigned", 2, 3, 1),
]


@pytest.mark.parametrize(("op", "a", "b", "want"), BINARY)
def test_binary_opcodes(op: str, a: int, b: int, want: int) -> None:
    assert run(c64(a), c64(b), op, "end") == want


@pytest.mark.parametrize("op", ["div_signed", "div_unsigned", "rem_signed", "rem_unsigned"])
def test_division_by_zero_is_an_eval_error(op: str) -> None:
    with pytest.raises(EvalError, match="division by zero"):
        run("const8 7", "const8 0", op, "end")


UNARY = [
    ("log_not", 0, 1),
    ("log_not", 5, 0),
    ("log_not", 1 << 63, 0),
    ("bit_not", 0, M),
    ("bit_not", 0x0F, M ^ 0x0F),
    ("ext 8", 0x80, NEG(-128)),
    ("ext 8", 0x7F, 0x7F),
    ("ext 8", 0x1FF, M),  # bits above 8 are dropped first
    ("ext 16", 0xDEAD, NEG(0xDEAD - 0x10000)),
    ("ext 32", 0xFFFFFFF0, NEG(-16)),
    ("ext 1", 1, M),
    ("ext 63", 1 << 62, NEG(-(1 << 62))),
    ("ext 64", 1 << 63, 1 << 63),  # 64 bits and more: nothing to do
    ("ext 200", 5, 5),
    ("zero_ext 8", NEG(-1), 0xFF),
    ("zero_ext 32", NEG(-16), 0xFFFFFFF0),
    ("zero_ext 0", 12345, 0),
    ("zero_ext 64", M, M),
    ("zero_ext 255", M, M),
]


@pytest.mark.parametrize(("op", "a", "want"), UNARY)
def test_unary_opcodes(op: str, a: int, want: int) -> None:
    assert run(c64(a), op, "end") == want


def test_constants_are_big_endian_and_unsigned_in_the_stream() -> None:
    assert asm("const16 0x1234") == b"\x23\x12\x34"
    assert run("const8 0xff", "end") == 0xFF
    assert run("const16 0xfffe", "end") == 0xFFFE
    assert run("const32 0x80000000", "end") == 0x80000000
    assert run("const64 0x8000000000000001", "end") == 0x8000000000000001
    assert parse_agent_expr(b"\x24\x01\x02\x03\x04\x27").insns[0].operand == 0x01020304


def test_reg_reads_the_numbered_register_with_a_16_bit_operand() -> None:
    regs = {3: 7, 0x1234: 99, 70: -1}
    assert run("reg 3", "end", regs=regs) == 7
    assert run("reg 0x1234", "end", regs=regs) == 99
    assert run("reg 70", "end", regs=regs) == M  # a callback's negative value: its 64 bits
    assert parse_agent_expr(asm("reg 3", "reg 0x1234", "add", "end")).registers == {3, 0x1234}


@pytest.mark.parametrize(
    ("op", "big", "little"),
    [
        ("ref8", 0x11, 0x11),
        ("ref16", 0x1122, 0x2211),
        ("ref32", 0x11223344, 0x44332211),
        ("ref64", 0x1122334455667788, 0x8877665544332211),
    ],
)
def test_ref_reads_target_memory_in_target_byte_order(op: str, big: int, little: int) -> None:
    ram = Ram(0x1000, bytes.fromhex("000000001122334455667788"))
    assert run("const16 0x1004", op, "end", ram=ram, big_endian=True) == big
    assert run("const16 0x1004", op, "end", ram=ram, big_endian=False) == little
    size = {"ref8": 1, "ref16": 2, "ref32": 4, "ref64": 8}[op]
    assert set(ram.reads) == {(0x1004, size)}


def test_ref_addresses_are_cut_to_the_targets_address_width() -> None:
    """A 32-bit target's address arithmetic wraps at 32 bits, as GDB's own evaluation of a
    32-bit pointer does (``docs/conditions.md`` §Semantics)."""
    ram = Ram(0x1000, b"\x2a")
    code = ("const64 0xffffffff00001000", "ref8", "end")
    assert run(*code, ram=ram, addr_bits=32) == 0x2A
    assert ram.reads[-1] == (0x1000, 1)
    with pytest.raises(EvalError, match=r"memory read of 1 byte\(s\) at 0xffffffff00001000"):
        run(*code, ram=ram, addr_bits=64)


def test_a_failed_read_is_an_eval_error_with_the_callers_error_as_cause() -> None:
    from guestdbg.errors import BadAddress

    with pytest.raises(EvalError, match="at 0x2000 failed: BadAddress") as info:
        run("const16 0x2000", "ref32", "end", ram=Ram(0x1000))
    assert isinstance(info.value.__cause__, BadAddress)

    def short(addr: int, size: int) -> bytes:
        return b"\x00"

    with pytest.raises(EvalError, match=r"returned 1 byte\(s\), not 4"):
        both(parse_agent_expr(asm("const8 0", "ref32", "end")), {}.__getitem__, short)


def test_a_failed_register_read_is_an_eval_error_with_the_cause() -> None:
    with pytest.raises(EvalError, match="register 9 read failed: KeyError") as info:
        run("reg 9", "end", regs={3: 1})
    assert isinstance(info.value.__cause__, KeyError)


STACK = [
    # (program, the stack after it, bottom first: read back by the tail of each program)
    (("const8 1", "const8 2", "dup"), [1, 2, 2]),
    (("const8 1", "const8 2", "pop"), [1]),
    (("const8 1", "const8 2", "swap"), [2, 1]),
    (("const8 1", "const8 2", "const8 3", "rot"), [3, 1, 2]),  # a b c => c a b
    (("const8 1", "const8 2", "const8 3", "pick 0"), [1, 2, 3, 3]),  # pick 0 is dup
    (("const8 1", "const8 2", "const8 3", "pick 2"), [1, 2, 3, 1]),
    (("const8 1", "const8 2", "const8 3", "pick 1"), [1, 2, 3, 2]),
]


@pytest.mark.parametrize(("program", "stack"), STACK)
def test_stack_opcodes(program: tuple[str, ...], stack: list[int]) -> None:
    """Each value is read back by a program that pops down to it: the top is what ``end``
    returns, and each ``pop`` more exposes the next."""
    for depth, want in enumerate(reversed(stack)):
        assert run(*program, *(["pop"] * depth), "end") == want


def test_if_goto_jumps_when_the_top_is_not_zero_and_pops_it() -> None:
    prog = ("reg 0", "if_goto T", "const8 10", "goto E", "T:", "const8 20", "E:", "end")
    assert run(*prog, regs={0: 0}) == 10
    assert run(*prog, regs={0: 1}) == 20
    assert run(*prog, regs={0: 1 << 63}) == 20
    assert parse_agent_expr(asm(*prog)).max_stack == 1  # the condition was popped


def test_goto_targets_are_absolute_16_bit_offsets() -> None:
    code = asm("goto L", "const8 1", "L:", "const8 2", "end")
    assert code[:3] == b"\x21\x00\x05"
    assert run("goto L", "const8 1", "L:", "const8 2", "end") == 2


def test_end_returns_the_top_and_ignores_the_rest() -> None:
    assert run("const8 1", "const8 2", "const8 3", "end") == 3


def test_a_loop_runs_in_the_interpreter_under_the_step_limit() -> None:
    """Count r0 down to 0: a backward jump, so no generated function; the handler loop runs
    it and stops a loop that is too long."""
    loop = ("reg 0", "L:", "const8 1", "sub", "dup", "if_goto L", "end")
    expr = parse_agent_expr(asm(*loop))
    assert expr.compiled is None
    assert run(*loop, regs={0: 100}) == 0
    with pytest.raises(EvalError, match="step limit exceeded: more than 10000 instructions"):
        run(*loop, regs={0: 1 << 40})


def test_a_forward_expression_longer_than_the_step_limit_is_stopped_too() -> None:
    from guestdbg.conditions import ExprLimits, evaluate

    expr = parse_agent_expr(asm("const8 1", *(["dup", "pop"] * 20), "end"))
    assert expr.compiled is not None and expr.reachable == 42
    ok = evaluate(expr, {}.__getitem__, Ram(), big_endian=True, addr_bits=32)
    assert ok == 1
    with pytest.raises(EvalError, match="step limit exceeded: more than 41 instructions"):
        evaluate(expr, {}.__getitem__, Ram(), big_endian=True, addr_bits=32,
                 limits=ExprLimits(max_steps=41))  # fmt: skip


def test_an_expression_deeper_than_evaluates_limit_is_refused_when_run() -> None:
    from guestdbg.conditions import ExprLimits, evaluate

    expr = parse_agent_expr(asm(*(["const8 1"] * 5), "end"))
    assert expr.max_stack == 5
    with pytest.raises(EvalError, match="stack overflow: the expression needs 5 values"):
        evaluate(expr, {}.__getitem__, Ram(), big_endian=True, addr_bits=32,
                 limits=ExprLimits(max_stack=4))  # fmt: skip


@pytest.mark.parametrize("bits", [0, 65, -1])
def test_a_bad_address_width_is_an_eval_error(bits: int) -> None:
    from guestdbg.conditions import evaluate

    expr = parse_agent_expr(asm("const8 1", "end"))
    with pytest.raises(EvalError, match="addr_bits must be an int from 1 to 64"):
        evaluate(expr, {}.__getitem__, Ram(), big_endian=True, addr_bits=bits)
