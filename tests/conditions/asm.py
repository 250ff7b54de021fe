"""A tiny agent-expression assembler for the tests, with its own copy of the opcode numbers
and operand sizes (GDB's table, ``docs/conditions.md`` §Opcodes), so a wrong number in
``guestdbg.conditions.opcodes`` fails the tests instead of agreeing with itself.

``asm("reg 3", "const8 5", "equal", "end")``; operands in decimal or 0x hex; a jump operand
may be a label (``"L:"`` on its own line defines one).
"""

from __future__ import annotations

from collections.abc import Callable

from guestdbg.conditions import AgentExpr, evaluate, parse_agent_expr
from guestdbg.conditions.interpret import interpret

OPCODES = {
    "float": (0x01, 0), "add": (0x02, 0), "sub": (0x03, 0), "mul": (0x04, 0),
    "div_signed": (0x05, 0), "div_unsigned": (0x06, 0), "rem_signed": (0x07, 0),
    "rem_unsigned": (0x08, 0), "lsh": (0x09, 0), "rsh_signed": (0x0A, 0),
    "rsh_unsigned": (0x0B, 0), "trace": (0x0C, 0), "trace_quick": (0x0D, 1),
    "log_not": (0x0E, 0), "bit_and": (0x0F, 0), "bit_or": (0x10, 0), "bit_xor": (0x11, 0),
    "bit_not": (0x12, 0), "equal": (0x13, 0), "less_signed": (0x14, 0),
    "less_unsigned": (0x15, 0), "ext": (0x16, 1), "ref8": (0x17, 0), "ref16": (0x18, 0),
    "ref32": (0x19, 0), "ref64": (0x1A, 0), "ref_float": (0x1B, 0), "ref_double": (0x1C, 0),
    "ref_long_double": (0x1D, 0), "l_to_d": (0x1E, 0), "d_to_l": (0x1F, 0),
    "if_goto": (0x20, 2), "goto": (0x21, 2), "const8": (0x22, 1), "const16": (0x23, 2),
    "const32": (0x24, 4), "const64": (0x25, 8), "reg": (0x26, 2), "end": (0x27, 0),
    "dup": (0x28, 0), "pop": (0x29, 0), "zero_ext": (0x2A, 1), "swap": (0x2B, 0),
    "getv": (0x2C, 2), "setv": (0x2D, 2), "tracev": (0x2E, 2), "tracenz": (0x2F, 0),
    "trace16": (0x30, 2), "pick": (0x32, 1), "rot": (0x33, 0), "printf": (0x34, 0),
}  # fmt: skip

M = (1 << 64) - 1


def asm(*lines: str) -> bytes:
    labels: dict[str, int] = {}
    at = 0
    for line in lines:  # first pass: label offsets
        if line.endswith(":"):
            labels[line[:-1]] = at
        else:
            at += 1 + OPCODES[line.split()[0]][1]
    out = bytearray()
    for line in lines:
        if line.endswith(":"):
            continue
        name, *arg = line.split()
        code, size = OPCODES[name]
        out.append(code)
        if size:
            value = labels[arg[0]] if arg[0] in labels else int(arg[0], 0)
            out += (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    return bytes(out)


class Ram:
    """Guest memory for the tests: ``size`` bytes at ``base``; a read outside raises
    ``BadAddress``, and every read is recorded."""

    def __init__(self, base: int = 0x1000, data: bytes = b"", size: int = 0x100) -> None:
        from guestdbg.errors import BadAddress

        self.base = base
        self.data = bytearray(data.ljust(size, b"\0"))
        self.reads: list[tuple[int, int]] = []
        self._bad = BadAddress

    def __call__(self, addr: int, size: int) -> bytes:
        self.reads.append((addr, size))
        off = addr - self.base
        if off < 0 or off + size > len(self.data):
            raise self._bad(f"{addr:#x}+{size} is not guest memory")
        return bytes(self.data[off : off + size])


def both(
    expr: AgentExpr,
    regs: Callable[[int], int],
    mem: Callable[[int, int], bytes],
    *,
    big_endian: bool = True,
    addr_bits: int = 64,
) -> int:
    """``evaluate`` (the generated function when there is one), and the handler loop on the
    same input; they must agree, value or error message."""
    from guestdbg.errors import EvalError

    outcome: list[object] = []
    for path in ("evaluate", "interpret"):
        try:
            if path == "evaluate":
                got: object = evaluate(expr, regs, mem, big_endian=big_endian, addr_bits=addr_bits)
            else:
                env = (regs, mem, "big" if big_endian else "little", (1 << addr_bits) - 1, 100)
                got = interpret(expr, env, 10_000)
        except EvalError as e:
            got = e
        outcome.append(got)
    a, b = outcome
    if isinstance(a, EvalError) or isinstance(b, EvalError):
        assert type(a) is type(b) and str(a) == str(b), (a, b)
        raise a  # type: ignore[misc]
    assert a == b, (a, b)
    return a  # type: ignore[return-value]


def run(
    *lines: str, regs: dict[int, int] | None = None, ram: Ram | None = None, **kw: object
) -> int:
    """Assemble, parse and evaluate both ways."""
    table = regs or {}
    return both(parse_agent_expr(asm(*lines)), table.__getitem__, ram or Ram(), **kw)  # type: ignore[arg-type]
