"""What a validated agent expression is, and the limits validation and evaluation hold it to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .opcodes import Op


@dataclass(frozen=True)
class ExprLimits:
    max_code: int = 2048
    """Bytes of bytecode accepted. A condition travels hex-encoded inside one Z packet, so
    GDB cannot send more than half a ``PacketSize`` of it."""
    max_stack: int = 100
    """Values the stack may hold (gdbserver's own bound, ``docs/conditions.md`` §Limits)."""
    max_steps: int = 10_000
    """Instructions one evaluation may execute; a loop that runs longer is an error, not a
    hang of the vCPU thread."""

    def __post_init__(self) -> None:
        for name in ("max_code", "max_stack", "max_steps"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ExprLimits.{name} must be a positive int, not {value!r}")


DEFAULT_LIMITS = ExprLimits()


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: where it is, what it is, its operand (0 when it has none)."""

    offset: int
    op: Op
    operand: int


Compiled = Callable[[Callable[[int], int], Callable[[int, int], bytes], str, int], int]
"""What ``codegen`` makes: ``run(regs, mem, byte_order, addr_mask) -> value``."""
Handler = Callable[..., int]
Step = tuple[Handler, Any, int]
"""A pre-decoded instruction as ``evaluate`` runs it: the handler, its argument (operand,
mask or jump target, already decoded) and the index of the next instruction."""


@dataclass(frozen=True)
class AgentExpr:
    """An agent expression that passed validation (:func:`~guestdbg.conditions.parse_agent_expr`
    is the only way to make one), with what validation learned about it."""

    code: bytes
    registers: frozenset[int]
    """GDB register numbers the expression can read (``reg n`` on a reachable path), so a
    caller can fetch only those."""
    max_stack: int
    """The deepest the stack gets on any path (exact: every path reaches an instruction with
    the same depth, or the expression was refused)."""
    reads_memory: bool
    """Whether any reachable instruction reads target memory (``ref8`` ... ``ref64``)."""
    insns: tuple[Insn, ...] = field(repr=False)
    """Every instruction, in code order."""
    reachable: int = field(repr=False)
    """How many instructions some path reaches."""
    steps: tuple[Step, ...] = field(repr=False, compare=False)
    """What ``interpret`` runs: ``insns`` decoded, jump targets as instruction indices."""
    compiled: (
        Callable[[Callable[[int], int], Callable[[int, int], bytes], str, int], int] | None
    ) = field(repr=False, compare=False)
    """``codegen``'s function for the expression (None when it has a backward jump)."""
