"""Validation of agent-expression bytecode: decode, check the jumps, prove the stack.

Everything that can be known before the expression runs is checked here, once, when GDB sets
the condition, so the evaluation on every breakpoint hit has only runtime failures left (a
division by zero, a failed read, the step limit). The rules are in ``docs/conditions.md``
§Validation.
"""

from __future__ import annotations

import functools

from ..errors import BadExpression
from .codegen import compile_forward
from .expr import DEFAULT_LIMITS, AgentExpr, ExprLimits, Insn
from .interpret import build_steps
from .opcodes import OPS, REF_SIZES, Op


def _decode(code: bytes) -> list[Insn]:
    """Every byte belongs to one instruction, read from offset 0 on (a linear sweep, as GDB
    lays code out); unknown and refused opcodes and cut operands are refused wherever they
    are."""
    insns: list[Insn] = []
    pc, n = 0, len(code)
    while pc < n:
        byte = code[pc]
        info = OPS.get(byte)
        if info is None:
            raise BadExpression(f"unknown agent-expression opcode 0x{byte:02x} at offset {pc}")
        if info.refused is not None:
            raise BadExpression(
                f"{info.name} (opcode 0x{byte:02x}) at offset {pc} is not supported in a "
                f"breakpoint condition: {info.refused}"
            )
        end = pc + 1 + info.operand
        if end > n:
            raise BadExpression(
                f"{info.name} at offset {pc} needs {info.operand} operand byte(s), "
                f"the code ends after {n - pc - 1}"
            )
        operand = int.from_bytes(code[pc + 1 : end], "big")
        if info.op is Op.EXT and operand == 0:
            raise BadExpression(f"ext 0 at offset {pc}: there is no sign bit to extend from")
        insns.append(Insn(pc, info.op, operand))
        pc = end
    return insns


def _needs(insn: Insn) -> int:
    if insn.op is Op.PICK:
        return insn.operand + 1
    return OPS[insn.op].pops


def _analyse(insns: list[Insn], code_len: int, limits: ExprLimits) -> tuple[list[int | None], int]:
    """The stack depth before each instruction (None: unreachable), by abstract interpretation
    over the control-flow graph from offset 0 with an empty stack. Refuses an underflow on
    some path, a depth over the limit, two paths meeting with different depths (GDB's own
    compiler refuses those too), and a path that runs off the end of the code."""
    index = {insn.offset: i for i, insn in enumerate(insns)}
    for insn in insns:
        if insn.op in (Op.GOTO, Op.IF_GOTO):
            t = insn.operand
            if t >= code_len:
                raise BadExpression(
                    f"{insn.op.name.lower()} at offset {insn.offset} jumps to {t}, outside the "
                    f"code ({code_len} bytes)"
                )
            if t not in index:
                raise BadExpression(
                    f"{insn.op.name.lower()} at offset {insn.offset} jumps to {t}, which is not "
                    f"the start of an instruction"
                )
    depth: list[int | None] = [None] * len(insns)
    depth[0] = 0
    work = [0]
    deepest = 0
    while work:
        i = work.pop()
        insn = insns[i]
        d = depth[i]
        assert d is not None
        name = insn.op.name.lower()
        need = _needs(insn)
        if d < need:
            raise BadExpression(
                f"stack underflow: {name} at offset {insn.offset} needs {need} value(s) on the "
                f"stack, some path reaches it with {d}"
            )
        if insn.op is Op.END:
            continue
        after = d - OPS[insn.op].pops + OPS[insn.op].pushes
        if after > limits.max_stack:
            raise BadExpression(
                f"stack too deep: {after} values after {name} at offset {insn.offset}, "
                f"the limit is {limits.max_stack}"
            )
        deepest = max(deepest, after)
        succ: list[int] = []
        if insn.op is Op.GOTO:
            succ.append(index[insn.operand])
        else:
            if insn.op is Op.IF_GOTO:
                succ.append(index[insn.operand])
            if i + 1 == len(insns):
                raise BadExpression(
                    f"no end: execution runs off the end of the code after {name} at offset "
                    f"{insn.offset}"
                )
            succ.append(i + 1)
        for j in succ:
            seen = depth[j]
            if seen is None:
                depth[j] = after
                work.append(j)
            elif seen != after:
                raise BadExpression(
                    f"paths reach offset {insns[j].offset} with different stack depths "
                    f"({seen} and {after})"
                )
    return depth, deepest


def parse_agent_expr(code: bytes, *, limits: ExprLimits = DEFAULT_LIMITS) -> AgentExpr:
    """Validate GDB agent-expression bytecode for use as a breakpoint condition.

    Raises :class:`~guestdbg.errors.BadExpression` (an ``InvalidRequest``) with what is wrong
    and where; the rules are in ``docs/conditions.md`` §Validation. The same bytes under the
    same limits give the same (immutable) expression, kept for the next time: GDB sends a
    condition again each time it inserts the breakpoint, and making the generated function
    is the costly part of parsing."""
    if not isinstance(code, bytes | bytearray | memoryview):
        raise BadExpression(f"an agent expression is bytes, not {type(code).__name__}")
    return _parse(bytes(code), limits)


@functools.lru_cache(maxsize=256)
def _parse(code: bytes, limits: ExprLimits) -> AgentExpr:
    if not code:
        raise BadExpression("empty agent expression")
    if len(code) > limits.max_code:
        raise BadExpression(
            f"agent expression of {len(code)} bytes, the limit is {limits.max_code}"
        )
    insns = _decode(code)
    depth, deepest = _analyse(insns, len(code), limits)
    live = [insn for insn, d in zip(insns, depth, strict=True) if d is not None]
    return AgentExpr(
        code=code,
        registers=frozenset(insn.operand for insn in live if insn.op is Op.REG),
        max_stack=deepest,
        reads_memory=any(insn.op in REF_SIZES for insn in live),
        insns=tuple(insns),
        reachable=len(live),
        steps=build_steps(insns),
        compiled=compile_forward(insns, depth),
    )
