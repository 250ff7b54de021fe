"""Running a validated agent expression against a stopped vCPU.

Values are 64-bit two's complement held as Python ints in ``[0, 2**64)``: arithmetic wraps,
the signed opcodes read the same bits as signed (``docs/conditions.md`` §Semantics). Each
instruction was decoded by ``parse`` into a handler, its decoded argument and the index of the
next instruction, so the loop here does no byte decoding; a handler returns the index of the
instruction to run next, ``-1`` after ``end``.

The expression reaches the guest only through the two callbacks, and both only read: there is
no way for an expression to write a register or memory, whatever its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import EvalError
from .expr import DEFAULT_LIMITS, AgentExpr, ExprLimits, Handler, Insn, Step
from .opcodes import REF_SIZES, Op

M = (1 << 64) - 1
SIGN = 1 << 63

Regs = Callable[[int], int]
Mem = Callable[[int, int], bytes]
Env = tuple[Regs, Mem, str, int, int]
"""regs, mem, byte order, address mask, stack limit."""


def _signed(v: int) -> int:
    return v - (1 << 64) if v & SIGN else v


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
        raise EvalError("division by zero in the condition")
    return b


def _div_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = _signed(_divisor(s))
    x = _signed(s[-1])
    q = abs(x) // abs(b)  # C division: the quotient truncates toward zero
    s[-1] = (q if (x < 0) == (b < 0) else -q) & M
    return n


def _div_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = _divisor(s)
    s[-1] = s[-1] // b
    return n


def _rem_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = _signed(_divisor(s))
    x = _signed(s[-1])
    r = abs(x) % abs(b)  # C remainder: the sign of the dividend
    s[-1] = (-r if x < 0 else r) & M
    return n


def _rem_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = _divisor(s)
    s[-1] = s[-1] % b
    return n


def _lsh(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = (s[-1] << b) & M if b < 64 else 0
    return n


def _rsh_signed(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = (_signed(s[-1]) >> min(b, 63)) & M
    return n


def _rsh_unsigned(s: list[int], a: int, n: int, e: Env) -> int:
    b = s.pop()
    s[-1] = s[-1] >> b if b < 64 else 0
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
            raise ValueError(f"the read returned {len(data)} byte(s), not {size}")
        s[-1] = int.from_bytes(data, e[2])  # type: ignore[arg-type]
    except Exception as exc:
        raise EvalError(f"memory read of {size} byte(s) at 0x{addr:x} failed: {_why(exc)}") from exc
    return n


def _reg(s: list[int], num: int, n: int, e: Env) -> int:
    try:
        s.append(e[0](num) & M)
    except Exception as exc:
        raise EvalError(f"register {num} read failed: {_why(exc)}") from exc
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


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


_MASKS = {bits: (1 << bits) - 1 for bits in range(1, 65)}


def evaluate(
    expr: AgentExpr,
    regs: Regs,
    mem: Mem,
    *,
    big_endian: bool,
    addr_bits: int,
    limits: ExprLimits = DEFAULT_LIMITS,
) -> int:
    """The value of ``expr``: the top of the stack at ``end``, as an unsigned 64-bit int (a
    condition holds when it is not 0).

    ``regs(n)`` gives GDB register ``n``; ``mem(addr, size)`` gives ``size`` bytes of guest
    memory at ``addr`` in the debugger's view, ``addr`` already cut to ``addr_bits`` bits.
    These are the only ways to the guest, and both read: an expression cannot write.
    Every failure is an :class:`~guestdbg.errors.EvalError` with its reason (whatever a
    callback raised is its ``__cause__``); nothing else escapes, except what is not an
    ``Exception`` (``KeyboardInterrupt``, ``SystemExit``)."""
    mask = _MASKS.get(addr_bits)
    if mask is None:
        raise EvalError(f"addr_bits must be 1 to 64, not {addr_bits!r}")
    env: Env = (regs, mem, "big" if big_endian else "little", mask, limits.max_stack)
    steps = expr.steps
    stack: list[int] = []
    pc = 0
    try:
        for _ in range(limits.max_steps):
            fn, arg, nxt = steps[pc]
            pc = fn(stack, arg, nxt, env)
            if pc < 0:
                return stack[-1]
    except IndexError as exc:  # parse proves the depth; this only turns a bug into the error
        raise EvalError("stack underflow") from exc
    raise EvalError(f"step limit exceeded: more than {limits.max_steps} instructions")
