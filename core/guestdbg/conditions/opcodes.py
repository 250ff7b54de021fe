"""GDB's agent-expression opcode table: every opcode GDB defines, what it takes from the
bytecode stream and the stack, and whether a breakpoint condition may use it.

The numbers, operand sizes and stack effects are GDB's (``docs/conditions.md`` §Opcodes, which
gives the primary sources); they are part of the remote protocol and never change. An opcode is
*refused* when running it in a condition would write anything, need tracepoint state, or need
floating point; the reason is the text of the error a refused expression gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Op(IntEnum):
    FLOAT = 0x01
    ADD = 0x02
    SUB = 0x03
    MUL = 0x04
    DIV_SIGNED = 0x05
    DIV_UNSIGNED = 0x06
    REM_SIGNED = 0x07
    REM_UNSIGNED = 0x08
    LSH = 0x09
    RSH_SIGNED = 0x0A
    RSH_UNSIGNED = 0x0B
    TRACE = 0x0C
    TRACE_QUICK = 0x0D
    LOG_NOT = 0x0E
    BIT_AND = 0x0F
    BIT_OR = 0x10
    BIT_XOR = 0x11
    BIT_NOT = 0x12
    EQUAL = 0x13
    LESS_SIGNED = 0x14
    LESS_UNSIGNED = 0x15
    EXT = 0x16
    REF8 = 0x17
    REF16 = 0x18
    REF32 = 0x19
    REF64 = 0x1A
    REF_FLOAT = 0x1B
    REF_DOUBLE = 0x1C
    REF_LONG_DOUBLE = 0x1D
    L_TO_D = 0x1E
    D_TO_L = 0x1F
    IF_GOTO = 0x20
    GOTO = 0x21
    CONST8 = 0x22
    CONST16 = 0x23
    CONST32 = 0x24
    CONST64 = 0x25
    REG = 0x26
    END = 0x27
    DUP = 0x28
    POP = 0x29
    ZERO_EXT = 0x2A
    SWAP = 0x2B
    GETV = 0x2C
    SETV = 0x2D
    TRACEV = 0x2E
    TRACENZ = 0x2F
    TRACE16 = 0x30
    PICK = 0x32
    ROT = 0x33
    PRINTF = 0x34


@dataclass(frozen=True)
class OpInfo:
    op: Op
    operand: int
    """Bytes of operand that follow the opcode in the stream (big-endian)."""
    pops: int
    """Values the opcode needs on the stack (``pick n`` needs ``n + 1``: see ``parse``)."""
    pushes: int
    refused: str | None = None
    """Why a breakpoint condition may not use it; None when it may."""

    @property
    def name(self) -> str:
        return self.op.name.lower()


_TRACE = "it collects trace data (a tracepoint action, not a condition)"
_FLOAT = "floating point is not part of the agent-expression language GDB sends for conditions"
_STATE = "it uses trace state variables, which a breakpoint condition has none of"

_TABLE = (
    OpInfo(Op.FLOAT, 0, 0, 0, _FLOAT),
    OpInfo(Op.ADD, 0, 2, 1),
    OpInfo(Op.SUB, 0, 2, 1),
    OpInfo(Op.MUL, 0, 2, 1),
    OpInfo(Op.DIV_SIGNED, 0, 2, 1),
    OpInfo(Op.DIV_UNSIGNED, 0, 2, 1),
    OpInfo(Op.REM_SIGNED, 0, 2, 1),
    OpInfo(Op.REM_UNSIGNED, 0, 2, 1),
    OpInfo(Op.LSH, 0, 2, 1),
    OpInfo(Op.RSH_SIGNED, 0, 2, 1),
    OpInfo(Op.RSH_UNSIGNED, 0, 2, 1),
    OpInfo(Op.TRACE, 0, 2, 0, _TRACE),
    OpInfo(Op.TRACE_QUICK, 1, 1, 1, _TRACE),
    OpInfo(Op.LOG_NOT, 0, 1, 1),
    OpInfo(Op.BIT_AND, 0, 2, 1),
    OpInfo(Op.BIT_OR, 0, 2, 1),
    OpInfo(Op.BIT_XOR, 0, 2, 1),
    OpInfo(Op.BIT_NOT, 0, 1, 1),
    OpInfo(Op.EQUAL, 0, 2, 1),
    OpInfo(Op.LESS_SIGNED, 0, 2, 1),
    OpInfo(Op.LESS_UNSIGNED, 0, 2, 1),
    OpInfo(Op.EXT, 1, 1, 1),
    OpInfo(Op.REF8, 0, 1, 1),
    OpInfo(Op.REF16, 0, 1, 1),
    OpInfo(Op.REF32, 0, 1, 1),
    OpInfo(Op.REF64, 0, 1, 1),
    OpInfo(Op.REF_FLOAT, 0, 1, 1, _FLOAT),
    OpInfo(Op.REF_DOUBLE, 0, 1, 1, _FLOAT),
    OpInfo(Op.REF_LONG_DOUBLE, 0, 1, 1, _FLOAT),
    OpInfo(Op.L_TO_D, 0, 1, 1, _FLOAT),
    OpInfo(Op.D_TO_L, 0, 1, 1, _FLOAT),
    OpInfo(Op.IF_GOTO, 2, 1, 0),
    OpInfo(Op.GOTO, 2, 0, 0),
    OpInfo(Op.CONST8, 1, 0, 1),
    OpInfo(Op.CONST16, 2, 0, 1),
    OpInfo(Op.CONST32, 4, 0, 1),
    OpInfo(Op.CONST64, 8, 0, 1),
    OpInfo(Op.REG, 2, 0, 1),
    OpInfo(Op.END, 0, 1, 0),
    OpInfo(Op.DUP, 0, 1, 2),
    OpInfo(Op.POP, 0, 1, 0),
    OpInfo(Op.ZERO_EXT, 1, 1, 1),
    OpInfo(Op.SWAP, 0, 2, 2),
    OpInfo(Op.GETV, 2, 0, 1, _STATE),
    OpInfo(Op.SETV, 2, 1, 1, "it writes a trace state variable"),
    OpInfo(Op.TRACEV, 2, 0, 0, _TRACE),
    OpInfo(Op.TRACENZ, 0, 2, 0, _TRACE),
    OpInfo(Op.TRACE16, 2, 1, 1, _TRACE),
    OpInfo(Op.PICK, 1, 0, 1),
    OpInfo(Op.ROT, 0, 3, 3),
    OpInfo(
        Op.PRINTF, 0, 0, 0, "it prints from the target (a side effect; dprintf, not a condition)"
    ),
)

OPS: dict[int, OpInfo] = {info.op.value: info for info in _TABLE}
"""Every opcode GDB defines, by its byte; a byte not here is an unknown opcode."""

REF_SIZES = {Op.REF8: 1, Op.REF16: 2, Op.REF32: 4, Op.REF64: 8}
