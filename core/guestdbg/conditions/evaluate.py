"""Running a validated agent expression against a stopped vCPU: :func:`evaluate`.

The expression reaches the guest only through the two callbacks, and both only read: there is
no write callback, so no expression can change a register or a byte of memory, whatever its
bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import EvalError
from .expr import DEFAULT_LIMITS, AgentExpr, ExprLimits
from .interpret import interpret

_MASKS = {bits: (1 << bits) - 1 for bits in range(1, 65)}


def evaluate(
    expr: AgentExpr,
    regs: Callable[[int], int],
    mem: Callable[[int, int], bytes],
    *,
    big_endian: bool,
    addr_bits: int,
    limits: ExprLimits = DEFAULT_LIMITS,
) -> int:
    """The value of ``expr``: the top of the stack at ``end``, as an unsigned 64-bit int (a
    condition holds when it is not 0).

    ``regs(n)`` gives GDB register ``n`` (its value as an int; bits above 64 are dropped).
    ``mem(addr, size)`` gives ``size`` (1, 2, 4 or 8) bytes of guest memory at ``addr`` in the
    debugger's view; ``addr`` is the value on the stack cut to ``addr_bits`` bits, and the
    bytes are read in the target's order (``big_endian``). These are the only ways to the
    guest, and both read.

    Every failure is an :class:`~guestdbg.errors.EvalError` with its reason, and what a
    callback raised is its ``__cause__``: a division by zero, a failed read, more than
    ``limits.max_steps`` instructions, a stack deeper than ``limits.max_stack``. Nothing else
    escapes, except what is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``)."""
    mask = _MASKS.get(addr_bits)
    if mask is None:
        raise EvalError(f"addr_bits must be an int from 1 to 64, not {addr_bits!r}")
    if expr.max_stack > limits.max_stack:
        raise EvalError(
            f"stack overflow: the expression needs {expr.max_stack} values, the limit is "
            f"{limits.max_stack}"
        )
    order = "big" if big_endian else "little"
    try:
        run = expr.compiled
        if run is not None and expr.reachable <= limits.max_steps:
            return run(regs, mem, order, mask)
        return interpret(expr, (regs, mem, order, mask, limits.max_stack), limits.max_steps)
    except EvalError:
        raise
    except Exception as exc:  # a bug here must not take the vCPU thread with it
        raise EvalError(
            f"internal error in the agent-expression interpreter: {type(exc).__name__}: {exc}"
        ) from exc
