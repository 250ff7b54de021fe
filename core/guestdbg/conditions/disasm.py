"""An agent expression as text, one instruction a line, in the layout of GDB's ``maint agent``
listing (offset, name, operand in decimal), so the two can be compared line by line."""

from __future__ import annotations

from .expr import AgentExpr
from .opcodes import OPS


def disassemble(expr: AgentExpr) -> list[str]:
    lines = []
    for insn in expr.insns:
        text = f"{insn.offset:3d}  {insn.op.name.lower()}"
        if OPS[insn.op].operand:
            text += f" {insn.operand}"
        lines.append(text)
    return lines
