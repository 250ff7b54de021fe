"""The general way to run a validated expression: a loop over pre-decoded instructions.

``parse`` decoded each instruction into a handler, its decoded argument (operand, mask, jump
target as an instruction index) and the index of the next instruction, so the loop does no
byte decoding; a handler returns the index of the instruction to run next, ``-1`` after
``end``. It runs every expression ``parse`` accepts, loops included; ``codegen`` makes the
faster way for the ones without a backward jump (all GDB compiles), and both share
``semantics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import EvalError
from .expr import AgentExpr, Handler, Insn, Step
from .opcodes import REF_SIZES, Op
from .semantics import (
    DIV_BY_ZERO,
    SIGN,
    M,
    div_signed,
    lsh,
    memory_failed,
    register_failed,
    rem_signed,
    rsh_signed,
    rsh_unsigned,
    short_read,
)

Regs = Callable[[int], int]
Mem = Callable[[int, int], bytes]
Env = tuple[Regs, Mem, str, int, int]
"""regs, mem, byte order, address mask, stack limit."""


# -- the handlers: (stack, arg, next index, env) -> index to run next -------------------------


def _add(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = (s[-1] + b) & M
    return n


def _sub(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = (s[-1] - b) & M
    return n


def _mul(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = (s[-1] * b) & M
    return n


def _divisor(s: list[int]) -> int:
    b = s.pop()
    if b == 0:
        raise EvalError(DIV_BY_ZERO)
    return b


def _div_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = _divisor(s)
    s[-1] = div_signed(s[-1], b)
    return n


def _div_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = _divisor(s)
    s[-1] = s[-1] // b
    return n


def _rem_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = _divisor(s)
    s[-1] = rem_signed(s[-1], b)
    return n


def _rem_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = _divisor(s)
    s[-1] = s[-1] % b
    return n


def _lsh(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = lsh(s[-1], b)
    return n


def _rsh_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = rsh_signed(s[-1], b)
    return n


def _rsh_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = rsh_unsigned(s[-1], b)
    return n


def _log_not(s: list[int], a: int, n: int, e: Env) -> int:
    s[-1] = 0 if s[-1] else 1
    return n


def _bit_and(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] &= b
    return n


def _bit_or(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] |= b
    return n


def _bit_xor(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] ^= b
    return n


def _bit_not(s: list[int], a: int, n: int, e: Env) -> int:
    s[-1] ^= M
    return n


def _equal(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = 1 if s[-1] == b else 0
    return n


def _less_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = 1 if (s[-1] ^ SIGN) < (b ^ SIGN) else 0  # flipping the sign bit orders as signed
    return n


def _less_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = 1 if s[-1] < b else 0
    return n


def _ext(s: list[int], a: tuple[int, int], n: int, e: Env) -> int:
    mask, sign = a
    s[-1] = (((s[-1] & mask) ^ sign) - sign) & M
    return n


def _zero_ext(s: list[int], a: int, n: int, e: Env) -> int:
    s[-1] &= a
    return n


def _ref(s: list[int], size: int, n: int, e: Env) -> int:
    addr = s[-1] & e[3]
    try:
        data = e[1](addr, size)
        if len(data) != size:
            raise short_read(len(data), size)
        s[-1] = int.from_bytes(data, e[2])  # type: ignore[arg-type]
    except Exception as exc:
        raise memory_failed(size, addr, exc) from exc
    return n


def _reg(s: list[int], num: int, n: int, e: Env) -> int:
    try:
        s.append(e[0](num) & M)
    except Exception as exc:
        raise register_failed(num, exc) from exc
    return n


def _const(s: list[int], value: int, n: int, e: Env) -> int:
    s.append(value)
    return n


def _dup(s: list[int], a: int, n: int, e: Env) -> int:
    s.append(s[-1])
    return n


def _pop(s: list[int], a: int, n: int, e: Env) -> int:
    s.pop()
    return n


def _swap(s: list[int], a: int, n: int, e: Env) -> int:
    s[-1], s[-2] = s[-2], s[-1]
    return n


def _rot(s: list[int], a: int, n: int, e: Env) -> int:
    s[-3], s[-2], s[-1] = s[-1], s[-3], s[-2]  # a b c => c a b
    return n


def _pick(s: list[int], depth: int, n: int, e: Env) -> int:
    s.append(s[-1 - depth])
    return n


def _jump_guard(s: list[int], e: Env) -> None:
    """A loop is the only way a stack could outgrow straight-line code, so the depth is checked
    where control jumps (``parse`` proved it bounded; this is the second line)."""
    if len(s) > e[4]:
        raise EvalError(f"stack overflow: {len(s)} values, the limit is {e[4]}")


def _goto(s: list[int], target: int, n: int, e: Env) -> int:
    _jump_guard(s, e)
    return target


def _if_goto(s: list[int], target: int, n: int, e: Env) -> int:
    _jump_guard(s, e)
    return target if s.pop() else n


def _end(s: list[int], a: int, n: int, e: Env) -> int:
    return -1


def _fell_off(s: list[int], a: int, n: int, e: Env) -> int:
    raise EvalError("the condition ran off the end of its code without end")


_HANDLERS: dict[Op, Handler] = {
    Op.ADD: _add,
    Op.SUB: _sub,
    Op.MUL: _mul,
    Op.DIV_SIGNED: _div_signed,
    Op.DIV_UNSIGNED: _div_unsigned,
    Op.REM_SIGNED: _rem_signed,
    Op.REM_UNSIGNED: _rem_unsigned,
    Op.LSH: _lsh,
    Op.RSH_SIGNED: _rsh_signed,
    Op.RSH_UNSIGNED: _rsh_unsigned,
    Op.LOG_NOT: _log_not,
    Op.BIT_AND: _bit_and,
    Op.BIT_OR: _bit_or,
    Op.BIT_XOR: _bit_xor,
    Op.BIT_NOT: _bit_not,
    Op.EQUAL: _equal,
    Op.LESS_SIGNED: _less_signed,
    Op.LESS_UNSIGNED: _less_unsigned,
    Op.EXT: _ext,
    Op.ZERO_EXT: _zero_ext,
    Op.REF8: _ref,
    Op.REF16: _ref,
    Op.REF32: _ref,
    Op.REF64: _ref,
    Op.IF_GOTO: _if_goto,
    Op.GOTO: _goto,
    Op.CONST8: _const,
    Op.CONST16: _const,
    Op.CONST32: _const,
    Op.CONST64: _const,
    Op.REG: _reg,
    Op.END: _end,
    Op.DUP: _dup,
    Op.POP: _pop,
    Op.SWAP: _swap,
    Op.ROT: _rot,
    Op.PICK: _pick,
}


def build_steps(insns: list[Insn]) -> tuple[Step, ...]:
    """The instructions as ``evaluate`` runs them, plus a last entry that stops a run off the
    end (``parse`` refuses code that can reach it)."""
    index = {insn.offset: i for i, insn in enumerate(insns)}
    steps: list[Step] = []
    for i, insn in enumerate(insns):
        op, arg = insn.op, insn.operand
        decoded: Any = arg
        if op is Op.EXT:
            decoded = ((1 << arg) - 1, 1 << (arg - 1)) if arg < 64 else (M, 0)
        elif op is Op.ZERO_EXT:
            decoded = (1 << arg) - 1 if arg < 64 else M
        elif op in REF_SIZES:
            decoded = REF_SIZES[op]
        elif op in (Op.GOTO, Op.IF_GOTO):
            decoded = index[arg]
        steps.append((_HANDLERS[op], decoded, i + 1))
    steps.append((_fell_off, 0, len(insns)))
    return tuple(steps)


def interpret(expr: AgentExpr, env: Env, max_steps: int) -> int:
    """Run the pre-decoded instructions: the general way, for any expression ``parse``
    accepted (loops included), one handler call per instruction."""
    steps = expr.steps
    stack: list[int] = []
    pc = 0
    try:
        for _ in range(max_steps):
            fn, arg, nxt = steps[pc]
            pc = fn(stack, arg, nxt, env)
            if pc < 0:
                return stack[-1]
    except IndexError as exc:  # parse proves the depth; this only turns a bug into the error
        raise EvalError("stack underflow") from exc
    raise EvalError(f"step limit exceeded: more than {max_steps} instructions")
