"""Validation: each rule refuses what it should, with a message that says what and where, and
lets through what GDB sends. ``docs/conditions.md`` §Validation lists the rules."""

from __future__ import annotations

import pytest
from asm import OPCODES, asm

from guestdbg.conditions import BadExpression, ExprLimits, parse_agent_expr
from guestdbg.errors import InvalidRequest

REFUSED = ["float", "trace", "trace_quick 4", "ref_float", "ref_double", "ref_long_double",
           "l_to_d", "d_to_l", "getv 1", "setv 1", "tracev 1", "tracenz", "trace16 4",
           "printf"]  # fmt: skip


def refused(code: bytes, limits: ExprLimits | None = None) -> str:
    with pytest.raises(BadExpression) as info:
        parse_agent_expr(code, **({"limits": limits} if limits else {}))
    return str(info.value)


def test_bad_expression_is_an_invalid_request() -> None:
    assert issubclass(BadExpression, InvalidRequest)


@pytest.mark.parametrize("line", REFUSED)
def test_opcodes_with_side_effects_trace_state_or_floats_are_refused(line: str) -> None:
    name = line.split()[0]
    code = asm("const8 1", "const8 2", line, "end")
    msg = refused(code)
    assert f"{name} (opcode 0x{OPCODES[name][0]:02x}) at offset 4" in msg
    assert "not supported in a breakpoint condition" in msg


@pytest.mark.parametrize("byte", [0x00, 0x31, 0x35, 0x80, 0xFF])
def test_unknown_opcodes_are_refused_with_their_byte_and_offset(byte: int) -> None:
    assert refused(bytes([0x22, 1, byte, 0x27])) == (
        f"unknown agent-expression opcode 0x{byte:02x} at offset 2"
    )


def test_every_byte_is_known_or_unknown_as_gdbs_table_says() -> None:
    """The package's table against the tests' own copy of GDB's: every byte that is not an
    opcode is unknown, every opcode is accepted or refused by name."""
    by_code = {code: name for name, (code, _) in OPCODES.items()}
    refused_names = {line.split()[0] for line in REFUSED}
    for byte in range(256):
        try:
            parse_agent_expr(bytes([byte]) + b"\x00" * 8)
        except BadExpression as e:
            msg = str(e)
        else:  # pragma: no cover - a single opcode and zeros never make a whole expression
            raise AssertionError(byte)
        name = by_code.get(byte)
        if name is None:
            assert msg.startswith(f"unknown agent-expression opcode 0x{byte:02x}"), msg
        elif name in refused_names:
            assert f"{name} (opcode 0x{byte:02x}) at offset 0 is not supported" in msg, msg
        else:
            assert f"0x{byte:02x} at offset 0" not in msg and "not supported" not in msg, msg


@pytest.mark.parametrize(
    ("code", "what"),
    [
        (b"\x22", "const8 at offset 0 needs 1 operand byte(s), the code ends after 0"),
        (
            b"\x22\x01\x24\x00\x00\x01",
            "const32 at offset 2 needs 4 operand byte(s), the code ends after 3",
        ),
        (b"\x26\x00", "reg at offset 0 needs 2 operand byte(s), the code ends after 1"),
        (b"\x22\x01\x20\x00", "if_goto at offset 2 needs 2 operand byte(s)"),
    ],
)
def test_truncated_operands_are_refused(code: bytes, what: str) -> None:
    assert what in refused(code)


def test_jumps_must_land_on_an_instruction_inside_the_code() -> None:
    assert refused(asm("goto 9", "const8 1", "end")) == (
        "goto at offset 0 jumps to 9, outside the code (6 bytes)"
    )
    assert refused(asm("const8 1", "if_goto 4", "const8 2", "end")) == (
        "if_goto at offset 2 jumps to 4, which is not the start of an instruction"
    )


def test_a_stack_underflow_on_any_path_is_refused() -> None:
    assert refused(asm("add", "end")) == (
        "stack underflow: add at offset 0 needs 2 value(s) on the stack, some path reaches "
        "it with 0"
    )
    # only the path that jumps reaches "add" at offset 9, and with an empty stack
    code = asm("reg 0", "if_goto L", "const8 1", "end", "L:", "add", "end")
    assert refused(code).startswith("stack underflow: add at offset 9 needs 2 value(s)")
    assert refused(asm("const8 1", "pick 1", "end")).startswith(
        "stack underflow: pick at offset 2 needs 2 value(s)"
    )
    assert "stack underflow: end at offset 0" in refused(asm("end"))


def test_paths_meeting_with_different_depths_are_refused() -> None:
    code = asm("const8 1", "reg 0", "if_goto L", "const8 2", "L:", "end")
    assert refused(code) == "paths reach offset 10 with different stack depths (1 and 2)"


def test_code_that_can_run_off_the_end_is_refused() -> None:
    assert refused(asm("const8 1")) == (
        "no end: execution runs off the end of the code after const8 at offset 0"
    )
    code = asm("reg 0", "if_goto L", "const8 1", "end", "L:", "const8 2")
    assert "no end" in refused(code)


def test_depth_and_length_limits() -> None:
    limits = ExprLimits(max_stack=3, max_code=16)
    assert parse_agent_expr(asm(*["const8 1"] * 3, "end"), limits=limits).max_stack == 3
    assert refused(asm(*["const8 1"] * 4, "end"), limits) == (
        "stack too deep: 4 values after const8 at offset 6, the limit is 3"
    )
    assert refused(asm("const8 1", *["dup", "pop"] * 7, "end"), limits) == (
        "agent expression of 17 bytes, the limit is 16"
    )
    assert refused(b"") == "empty agent expression"
    assert refused(bytes(3000)).startswith("agent expression of 3000 bytes")


def test_a_loop_cannot_grow_the_stack_past_validation() -> None:
    """A loop that pushes each time round meets itself with a deeper stack: refused."""
    assert "different stack depths" in refused(asm("L:", "const8 1", "goto L"))


def test_ext_0_has_no_sign_bit() -> None:
    assert refused(asm("const8 1", "ext 0", "end")) == (
        "ext 0 at offset 2: there is no sign bit to extend from"
    )


def test_not_bytes_is_refused() -> None:
    assert refused("2227") == "an agent expression is bytes, not str"  # type: ignore[arg-type]


def test_unreachable_code_is_decoded_but_not_counted() -> None:
    expr = parse_agent_expr(asm("reg 1", "end", "reg 2", "ref8", "end"))
    assert expr.registers == {1} and not expr.reads_memory and expr.reachable == 2
    assert "unknown" in refused(asm("const8 1", "end") + b"\xff")


def test_what_validation_learns() -> None:
    expr = parse_agent_expr(asm("reg 3", "const16 0x1100", "ref32", "reg 4", "add", "equal", "end"))
    assert expr.registers == {3, 4}
    assert expr.max_stack == 3
    assert expr.reads_memory
    assert expr.compiled is not None  # no backward jump


def test_an_agent_expr_is_immutable() -> None:
    import dataclasses

    expr = parse_agent_expr(asm("const8 1", "end"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.code = b"\x27"  # type: ignore[misc]


def test_the_same_condition_sent_again_is_the_same_expression() -> None:
    """GDB sends a condition again each time it inserts the breakpoint: the second parse gives
    back the first expression (immutable, so sharing it is safe); other limits parse anew,
    and a refusal is refused again."""
    code = asm("reg 3", "const8 5", "equal", "end")
    first = parse_agent_expr(code)
    assert parse_agent_expr(bytearray(code)) is first
    assert parse_agent_expr(code, limits=ExprLimits(max_stack=2)) is not first
    for _ in range(2):
        assert "unknown" in refused(code + b"\xff")
