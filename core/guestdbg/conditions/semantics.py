"""The value model and the operations with more than one line to them, shared by both ways an
expression runs (``interpret`` and ``codegen``), so the two cannot drift apart.

Values are 64-bit two's complement held as Python ints in ``[0, 2**64)``: arithmetic wraps,
and the signed opcodes read the same bits as signed (``docs/conditions.md`` §Semantics).
"""

from __future__ import annotations

from ..errors import EvalError

M = (1 << 64) - 1
SIGN = 1 << 63
DIV_BY_ZERO = "division by zero in the condition"


def signed(v: int) -> int:
    return v - (1 << 64) if v & SIGN else v


def div_signed(x: int, y: int) -> int:
    """C's division of two LONGESTs: the quotient truncates toward zero; the one overflow
    (the most negative value by -1) wraps."""
    a, b = signed(x), signed(y)
    q = abs(a) // abs(b)
    return (q if (a < 0) == (b < 0) else -q) & M


def rem_signed(x: int, y: int) -> int:
    """C's remainder: it takes the sign of the dividend."""
    a, b = signed(x), signed(y)
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M


def rsh_signed(x: int, count: int) -> int:
    """Arithmetic shift; a count of 64 or more leaves only copies of the sign bit."""
    return (signed(x) >> min(count, 63)) & M


def lsh(x: int, count: int) -> int:
    """A count of 64 or more shifts every bit out."""
    return (x << count) & M if count < 64 else 0


def rsh_unsigned(x: int, count: int) -> int:
    return x >> count if count < 64 else 0


def why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def memory_failed(size: int, addr: int, exc: BaseException) -> EvalError:
    return EvalError(f"memory read of {size} byte(s) at 0x{addr:x} failed: {why(exc)}")


def register_failed(num: int, exc: BaseException) -> EvalError:
    return EvalError(f"register {num} read failed: {why(exc)}")


def short_read(got: int, size: int) -> ValueError:
    return ValueError(f"the read returned {got} byte(s), not {size}")
