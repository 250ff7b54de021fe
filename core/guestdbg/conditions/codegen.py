"""The fast way to run an expression: one Python function per expression, made once by
``parse``.

Validation proved the stack depth before every reachable instruction, so stack slot ``k`` can
be a local variable ``s<k>`` and each instruction one or two statements on named slots, with
no list, no handler call and no dispatch per instruction. This is done only for expressions
whose jumps all go forward (every condition GDB compiles: ``&&``, ``||`` and ``?:`` jump
ahead): the basic blocks then run in code order, each guarded by ``if pc == <index>``, with no
loop, so a run executes at most as many instructions as the expression has. ``evaluate`` uses
this function when that count is within the step limit, and ``interpret`` otherwise.

The generated source is made only of the fixed text below, slot names and decimal integers
formatted from validated operands: no byte of the expression reaches it as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from ..errors import EvalError
from . import semantics
from .expr import Compiled, Insn
from .opcodes import REF_SIZES, Op

_BINARY = {
    Op.ADD: "{a} = ({a} + {b}) & M",
    Op.SUB: "{a} = ({a} - {b}) & M",
    Op.MUL: "{a} = ({a} * {b}) & M",
    Op.LSH: "{a} = lsh({a}, {b})",
    Op.RSH_SIGNED: "{a} = rsh_signed({a}, {b})",
    Op.RSH_UNSIGNED: "{a} = rsh_unsigned({a}, {b})",
    Op.BIT_AND: "{a} &= {b}",
    Op.BIT_OR: "{a} |= {b}",
    Op.BIT_XOR: "{a} ^= {b}",
    Op.EQUAL: "{a} = 1 if {a} == {b} else 0",
    Op.LESS_SIGNED: "{a} = 1 if ({a} ^ SIGN) < ({b} ^ SIGN) else 0",
    Op.LESS_UNSIGNED: "{a} = 1 if {a} < {b} else 0",
}
_DIVISION = {
    Op.DIV_SIGNED: "{a} = div_signed({a}, {b})",
    Op.DIV_UNSIGNED: "{a} = {a} // {b}",
    Op.REM_SIGNED: "{a} = rem_signed({a}, {b})",
    Op.REM_UNSIGNED: "{a} = {a} % {b}",
}
_NAMESPACE = {
    "M": semantics.M,
    "SIGN": semantics.SIGN,
    "EvalError": EvalError,
    "DIV_BY_ZERO": semantics.DIV_BY_ZERO,
    "div_signed": semantics.div_signed,
    "rem_signed": semantics.rem_signed,
    "lsh": semantics.lsh,
    "rsh_signed": semantics.rsh_signed,
    "rsh_unsigned": semantics.rsh_unsigned,
    "memory_failed": semantics.memory_failed,
    "register_failed": semantics.register_failed,
    "short_read": semantics.short_read,
}


def _statements(insn: Insn, d: int, index: dict[int, int], nxt: int) -> list[str]:
    """The statements for ``insn`` reached with ``d`` values on the stack."""
    op, x = insn.op, insn.operand
    top, a, b = f"s{d - 1}", f"s{d - 2}", f"s{d - 1}"
    if op in _BINARY:
        return [_BINARY[op].format(a=a, b=b)]
    if op in _DIVISION:
        return [f"if not {b}:", "    raise EvalError(DIV_BY_ZERO)", _DIVISION[op].format(a=a, b=b)]
    if op in REF_SIZES:
        size = REF_SIZES[op]
        return [
            f"addr = {top} & amask",
            "try:",
            f"    data = mem(addr, {size})",
            f"    if len(data) != {size}:",
            f"        raise short_read(len(data), {size})",
            f"    {top} = int.from_bytes(data, order)",
            "except Exception as exc:",
            f"    raise memory_failed({size}, addr, exc) from exc",
        ]
    if op is Op.REG:
        return [
            "try:",
            f"    s{d} = regs({x}) & M",
            "except Exception as exc:",
            f"    raise register_failed({x}, exc) from exc",
        ]
    if op in (Op.CONST8, Op.CONST16, Op.CONST32, Op.CONST64):
        return [f"s{d} = {x}"]
    if op is Op.EXT:
        if x >= 64:
            return []
        mask, sign = (1 << x) - 1, 1 << (x - 1)
        return [f"{top} = ((({top} & {mask}) ^ {sign}) - {sign}) & M"]
    if op is Op.ZERO_EXT:
        return [f"{top} &= {(1 << x) - 1}"] if x < 64 else []
    simple = {
        Op.LOG_NOT: f"{top} = 0 if {top} else 1",
        Op.BIT_NOT: f"{top} ^= M",
        Op.DUP: f"s{d} = {top}",
        Op.SWAP: f"{a}, {b} = {b}, {a}",
        Op.ROT: f"s{d - 3}, {a}, {b} = {b}, s{d - 3}, {a}",
        Op.PICK: f"s{d} = s{d - 1 - x}",
        Op.END: f"return {top}",
        Op.GOTO: f"pc = {index.get(x, -1)}",
        Op.IF_GOTO: f"pc = {index.get(x, -1)} if {top} else {nxt}",
    }
    if op is Op.POP:
        return []
    return [simple[op]]


def forward_source(insns: Sequence[Insn], depth: Sequence[int | None]) -> str | None:
    """The source of the function running ``insns``, or None when a jump goes backward (a
    loop, which the interpreter runs under its step limit). ``depth`` is the stack depth
    before each instruction (None: unreachable), as ``parse`` proved it."""
    index = {insn.offset: i for i, insn in enumerate(insns)}
    leaders = {0}
    for i, insn in enumerate(insns):
        if insn.op in (Op.GOTO, Op.IF_GOTO):
            target = index[insn.operand]
            if target <= i:
                return None
            leaders.add(target)
            leaders.add(i + 1)
    lines = ["def run(regs, mem, order, amask):", "    pc = 0"]
    block_open = False
    for i, insn in enumerate(insns):
        d = depth[i]
        if i in leaders and i > 0:
            if block_open:
                lines.append(f"        pc = {i}")  # the block before falls through
            block_open = False
        if d is None:
            continue  # unreachable: nothing jumps or falls here
        if not block_open:
            lines.append(f"    if pc == {i}:")
            block_open = True
        body = _statements(insn, d, index, i + 1)
        lines += [f"        {line}" for line in body or ["pass"]]
        if insn.op in (Op.END, Op.GOTO, Op.IF_GOTO):
            block_open = False
    lines.append("    raise EvalError('the condition ran off the end of its code without end')")
    return "\n".join(lines)


def compile_forward(insns: Sequence[Insn], depth: Sequence[int | None]) -> Compiled | None:
    """:func:`forward_source`, compiled."""
    source = forward_source(insns, depth)
    if source is None:
        return None
    namespace = dict(_NAMESPACE)
    exec(compile(source, "<agent expression>", "exec"), namespace)
    return cast(Compiled, namespace["run"])
