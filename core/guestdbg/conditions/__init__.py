"""GDB agent expressions as breakpoint conditions (``docs/conditions.md``).

:func:`parse_agent_expr` validates the bytecode of a ``Z0``/``Z1`` condition once, when GDB
sets it; :func:`evaluate` runs it on each hit against the stopped vCPU's registers and memory,
which it can only read. Generic over arches: registers are GDB's numbers, memory is bytes.
"""

from __future__ import annotations

from ..errors import BadExpression, EvalError
from .disasm import disassemble
from .evaluate import evaluate
from .expr import DEFAULT_LIMITS, AgentExpr, ExprLimits
from .parse import parse_agent_expr

__all__ = [
    "DEFAULT_LIMITS",
    "AgentExpr",
    "BadExpression",
    "EvalError",
    "ExprLimits",
    "disassemble",
    "evaluate",
    "parse_agent_expr",
]
