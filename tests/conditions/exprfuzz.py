"""Random and mutated agent expressions, and the check every one of them must pass.

Shared by the seeded fuzz benchmark (``bench/agent_expr_fuzz.py``), its slice in the suite
(``test_fuzz_slice.py``) and the coverage-guided target (``tests/fuzz/fuzz_targets.py``).

:func:`check` is the issue's contract for bad input, made executable: parsing raises nothing
but ``BadExpression``; evaluating raises nothing but ``EvalError`` (and never its internal-error
form); the value is a 64-bit unsigned int; the two ways of running agree; every register read is
one validation listed; memory is read only through the callback, in 1, 2, 4 or 8 bytes, inside
the address width, and never when validation said the expression reads none; guest RAM is
unchanged (there is no way to write). A run that does not terminate is caught by the caller's
hang guard. A broken rule raises :class:`Broken`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from guestdbg.conditions import AgentExpr, BadExpression, EvalError, evaluate, parse_agent_expr
from guestdbg.conditions.interpret import interpret
from guestdbg.conditions.opcodes import OPS
from guestdbg.errors import BadAddress

SEEDS = [
    bytes.fromhex(h)
    for h in (
        # What gdb-multiarch 13.1 sends for these conditions on 32-bit PowerPC (taken off the
        # wire as test_gdb_bytecode.py does).
        "2600032a2022052a201327",  # $r3 == 5
        "231100191620222a1320000f2100262600042a2022fd16082a2015200021210026220121002822002"
        "7",  # *(int*)0x1100 == 42 && $r4 < -3
        "2600032a2022052a20130e20001d23110817227f1320001d220021001f220127",  # ... || ...
        "2600042a2022fd16081427",  # (int)$r4 < -3
        "2600042a20162022ef16082b1427",  # (int)$r4 > -17
        "2600052a20162022040a164024f800000016201327",  # (long long)(int)$r5 >> 4 == ...
        "2600042a2022032a20062a2024555555502a201327",  # (unsigned)$r4 / 3 == 1431655760
        "2600042a201620220307162022ff16081327",  # (int)$r4 % 3 == -1
        "23110418161023dead16101327",  # *(short*)0x1104 == -8531
        "2311001a1640250000002adeadbeef1327",  # *(long long*)0x1100 == 0x2adeadbeef
        "2600032a20162022042b140e2000192600042a2016202100202600052a20162022f016081327",  # ?:
        "2600072a2022102a20032a2017227f1327",  # *(char*)($r7 - 0x10) == 0x7f
        "23110022042600062a20162004162002162019162024deadbeef16201327",  # *(int*)(a + 4*i)
        "2600032a2022052a201320001021002e2600012a2022082a20022a201916202200130e20002921002e22"
        "01210030220027",  # $r3 == 5 && *(int*)($r1 + 8) != 0
        "2600042a20220a2a20150e2000112100262600042a2022142a20152000212100262201210028220027",
    )
]
"""Conditions GDB compiles, to mutate from."""

RAM_BASE = 0x1000
RAM_SIZE = 0x200
REG_COUNT = 40
ALLOWED = sorted(code for code, info in OPS.items() if info.refused is None)


class Broken(Exception):
    """An expression the interpreter did not handle as it documents."""


@dataclass
class Outcome:
    parsed: bool = False
    evaluated: bool = False
    eval_error: bool = False


class Guest:
    """Registers 0 to REG_COUNT - 1 (a read of any other raises, as a caller's would) and
    RAM_SIZE bytes of RAM at RAM_BASE (a read outside raises ``BadAddress``); every read is
    recorded."""

    def __init__(self, rng: random.Random) -> None:
        pick = (0, 1, 5, RAM_BASE + 8, 1 << 63, (1 << 64) - 1)
        self.regs = [rng.choice(pick) if rng.random() < 0.8 else rng.getrandbits(64)
                     for _ in range(REG_COUNT)]  # fmt: skip
        self.ram = bytes(rng.getrandbits(8) for _ in range(RAM_SIZE))
        self.reg_reads: list[int] = []
        self.mem_reads: list[tuple[int, int]] = []

    def reg(self, n: int) -> int:
        self.reg_reads.append(n)
        if not 0 <= n < REG_COUNT:
            raise KeyError(f"no register {n}")
        return self.regs[n]

    def mem(self, addr: int, size: int) -> bytes:
        self.mem_reads.append((addr, size))
        off = addr - RAM_BASE
        if off < 0 or off + size > RAM_SIZE:
            raise BadAddress(f"{addr:#x}+{size} is outside guest RAM")
        return self.ram[off : off + size]


def _run(expr: AgentExpr, guest: Guest, big: bool, bits: int, fast: bool) -> int | str:
    try:
        if fast:
            return evaluate(expr, guest.reg, guest.mem, big_endian=big, addr_bits=bits)
        env = (guest.reg, guest.mem, "big" if big else "little", (1 << bits) - 1, 100)
        return interpret(expr, env, 10_000)
    except EvalError as e:
        if str(e).startswith("internal error"):
            raise Broken(f"evaluate: {e}") from e
        return f"EvalError: {e}"
    except Exception as e:
        raise Broken(f"evaluate raised {type(e).__name__}: {e}") from e


def _guest(seed: int) -> tuple[bool, int, Guest]:
    rng = random.Random(seed)
    return rng.random() < 0.5, rng.choice((32, 64)), Guest(rng)


def check(code: bytes, seed: int = 0) -> Outcome:
    """Parse ``code`` and, if it parses, evaluate it against a random guest chosen by
    ``seed``; raises :class:`Broken` when a rule (module docstring) does not hold."""
    out = Outcome()
    try:
        expr = parse_agent_expr(code)
    except BadExpression:
        return out
    except Exception as e:
        raise Broken(f"parse raised {type(e).__name__}: {e}") from e
    out.parsed = True
    return check_parsed(expr, seed, out)


def check_parsed(expr: AgentExpr, seed: int, out: Outcome | None = None) -> Outcome:
    """The evaluation half of :func:`check`."""
    out = out or Outcome(parsed=True)
    big, bits, guest = _guest(seed)
    ram = guest.ram
    value = _run(expr, guest, big, bits, fast=True)
    for n in guest.reg_reads:
        if n not in expr.registers:
            raise Broken(f"read register {n}, not in the validated set {sorted(expr.registers)}")
    if guest.mem_reads and not expr.reads_memory:
        raise Broken("read memory, validation said it reads none")
    for addr, size in guest.mem_reads:
        if size not in (1, 2, 4, 8) or not 0 <= addr < 1 << bits:
            raise Broken(f"read of {size} byte(s) at {addr:#x} with {bits}-bit addresses")
    if guest.ram is not ram or guest.ram != ram:
        raise Broken("guest RAM changed")
    if isinstance(value, int) and not 0 <= value < 1 << 64:
        raise Broken(f"value {value} is not a 64-bit unsigned int")
    if expr.compiled is not None:
        other = _run(expr, _guest(seed)[2], big, bits, fast=False)
        if other != value:
            raise Broken(f"the generated function gives {value!r}, the interpreter {other!r}")
    out.evaluated = isinstance(value, int)
    out.eval_error = not out.evaluated
    return out


# -- making expressions ----------------------------------------------------------------------


_BIN = [c for c, i in OPS.items() if i.refused is None and i.pops == 2 and i.pushes == 1]
_UNARY = [0x0E, 0x12, 0x16, 0x2A, 0x17, 0x18, 0x19, 0x1A]  # log_not bit_not ext zero_ext refs
_EDGES = (0, 1, 7, 8, 31, 32, 63, 64, 255, RAM_BASE, RAM_BASE + RAM_SIZE - 4, (1 << 64) - 1)
Token = tuple[int, int | str | None]
"""An opcode and its operand: a number, a label (jumps), or None."""


def _value(rng: random.Random, out: list[Token], depth: int) -> None:
    """Tokens that push exactly one value (and use what is below only through ``pick``)."""
    roll = rng.random()
    if depth > 6 or roll < 0.3:
        kind = rng.random()
        if kind < 0.4:
            known = rng.random() < 0.9
            out.append(
                (0x26, rng.choice((0, 1, 3, 4, 5, REG_COUNT - 1) if known else (REG_COUNT, 0xFFFF)))
            )
        else:
            op = rng.choice((0x22, 0x23, 0x24, 0x25))
            bits = 8 << (op - 0x22)
            v = rng.choice(_EDGES) if rng.random() < 0.6 else rng.getrandbits(bits)
            out.append((op, v & ((1 << bits) - 1)))
    elif roll < 0.5:
        _value(rng, out, depth + 1)
        op = rng.choice(_UNARY)
        out.append((op, rng.choice((1, 8, 16, 32, 63, 64, 200)) if op in (0x16, 0x2A) else None))
    elif roll < 0.8:
        _value(rng, out, depth + 1)
        _value(rng, out, depth + 1)
        out.append((rng.choice(_BIN), None))
    elif roll < 0.9:  # GDB's shape for && || ?: : cond; if_goto T; a; goto E; T: b; E:
        t, e = f"T{len(out)}", f"E{len(out)}"
        _value(rng, out, depth + 1)
        out.append((0x20, t))
        _value(rng, out, depth + 1)
        out += [(0x21, e), (-1, t)]
        _value(rng, out, depth + 1)
        out.append((-1, e))
    else:  # the stack opcodes GDB rarely uses
        _value(rng, out, depth + 1)
        _value(rng, out, depth + 1)
        shape = rng.choice(("dup", "swap", "rot", "pick"))
        if shape == "dup":
            out += [(0x28, None), (rng.choice(_BIN), None)]
        elif shape == "swap":
            out.append((0x2B, None))
        elif shape == "rot":
            _value(rng, out, depth + 1)
            out += [(0x33, None), (rng.choice(_BIN), None)]
        else:
            out += [(0x32, rng.choice((0, 1))), (rng.choice(_BIN), None)]
        out.append((rng.choice(_BIN), None))


def _assemble(tokens: list[Token]) -> bytes:
    labels: dict[str, int] = {}
    at = 0
    for op, arg in tokens:
        if op < 0:
            labels[str(arg)] = at
        else:
            at += 1 + OPS[op].operand if op in OPS else 1
    out = bytearray()
    for op, arg in tokens:
        if op < 0:
            continue
        out.append(op)
        size = OPS[op].operand if op in OPS else 0
        if size:
            v = labels[arg] if isinstance(arg, str) else int(arg or 0)
            out += (v & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    return bytes(out)


def random_program(rng: random.Random) -> bytes:
    """A well-formed expression most of the time (one value, then ``end``), built the way GDB
    builds them, with operands near the edges; sometimes broken on purpose: a loop, a jump
    anywhere, a refused or unknown opcode, a stack too deep, ``end`` missing."""
    tokens: list[Token] = []
    _value(rng, tokens, 0)
    roll = rng.random()
    if roll < 0.05:  # a loop: count the value down (terminates or hits the step limit)
        tokens = [*tokens, (-1, "L"), (0x22, 1), (0x03, None), (0x28, None), (0x20, "L")]
    elif roll < 0.08:
        tokens = [(0x22, 1)] * rng.choice((99, 100, 101)) + tokens
    elif roll < 0.12 and len(tokens) > 1:
        at = rng.randrange(len(tokens))
        tokens.insert(at, (rng.randrange(256), rng.getrandbits(16)))
    elif roll < 0.15:
        tokens.append((rng.choice((0x20, 0x21)), rng.randrange(64)))
    if rng.random() < 0.97:
        tokens.append((0x27, None))
    return _assemble(tokens)


def mutate(code: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    data = bytearray(code)
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        at = rng.randrange(len(data) + 1)
        if roll < 0.3 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif roll < 0.45 and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif roll < 0.6:
            data[at:at] = bytes([rng.choice(ALLOWED)])
        elif roll < 0.75 and data:
            del data[at : at + rng.randint(1, 3)]
        elif roll < 0.9:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            data[at:] = other[cut:]
        else:
            data[at:at] = random_program(rng)
    return bytes(data[:256])


def expressions(seed: int, count: int) -> list[bytes]:
    """``count`` expressions, the same for the same seed: the seeds themselves, then a third
    random bytes, a third random programs, a third mutations of seeds and earlier ones."""
    rng = random.Random(seed)
    pool = list(SEEDS)
    out = list(SEEDS[:count])
    while len(out) < count:
        roll = rng.random()
        if roll < 1 / 3:
            code = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        elif roll < 2 / 3:
            code = random_program(rng)
        else:
            code = mutate(rng.choice(pool), rng, pool)
        if len(pool) < 2000 and rng.random() < 0.2:
            pool.append(code)
        out.append(code)
    return out
