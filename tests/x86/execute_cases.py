"""Random cases for the in-place executor's differential check (``test_execute_differential``).

A case is code bytes and register values. The bytes are drawn around the subset of
:mod:`guestdbg_x86.execute`: its opcodes with random prefixes (the two it takes and the ones it
must refuse: lock, rep, segment overrides, 0x67, REX in the wrong place), ModRM bytes mostly
with registers but also memory forms, neighbouring and random opcodes, random immediates. Most
of the near misses are refused; whatever the plugin accepts is run on the real CPU and must
match it exactly, so every case the plugin accepts is a check. Registers and flags are drawn
with a bias to the edges (0, all ones, sign bits, small numbers) where flags differ.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SUBSET_OPCODES = (
    *[row + form for row in range(0, 0x40, 8) for form in range(6)],
    0x80, 0x81, 0x83, 0x84, 0x85, 0xA8, 0xA9, 0x88, 0x89, 0x8A, 0x8B, 0x8D,
    *range(0xB0, 0xC0), 0xC6, 0xC7, 0x86, 0x87, *range(0x90, 0x98),
    0xF6, 0xF7, 0xFE, 0xFF, 0x63, 0xEB, 0xE9, *range(0x70, 0x80),
)  # fmt: skip
TWO_BYTE = (0x1F, 0xB6, 0xB7, 0xBE, 0xBF, *range(0x80, 0x90))
NEAR_TWO_BYTE = (0x18, 0x19, 0x1E, 0xAF, 0xB0, 0xB1, 0xB8, 0xBC, 0xBD, 0xC0, 0xC1, 0x40, 0x44)
NEAR_OPCODES = (0x82, 0x8C, 0x8E, 0x8F, 0xC0, 0xC1, 0xD0, 0xD1, 0xD3, 0x69, 0x6B, 0x98, 0x99,
                0x9C, 0x9E, 0x9F, 0xA0, 0xA4, 0xE8, 0xEA, 0xE3, 0xE0, 0xF5, 0xF8, 0xF9, 0xFC,
                0x06, 0x0E, 0x27, 0x2F, 0x37, 0x3F, 0xD6)  # fmt: skip
LEGACY_PREFIXES = (0xF0, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65, 0x67)
EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
         0xFFFF_FFFF, 0x1_0000_0000, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - 2,
         0x0000_7FFF_FFFF_FFF0, 0xFFFF_8000_0000_0000)  # fmt: skip
STATUS = 0x8D5
"""CF, PF, AF, ZF, SF, OF."""
OTHER_FLAGS = (1 << 10, 1 << 16, 1 << 18)
"""DF, RF, AC: flags the subset must leave alone (RF: clear once the instruction completes)."""


@dataclass(frozen=True)
class Case:
    code: bytes
    gprs: tuple[int, ...]
    """rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8-r15 (``struct kvm_regs`` order)."""
    rflags: int


def _value(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.35:
        return rng.choice(EDGES)
    if r < 0.5:
        return rng.getrandbits(8)
    if r < 0.6:
        return (rng.getrandbits(64) & ~0xFF) | rng.choice((0, 0x7F, 0x80, 0xFF))
    return rng.getrandbits(64)


def _modrm(rng: random.Random) -> bytes:
    if rng.random() < 0.8:
        return bytes([0xC0 | rng.getrandbits(6)])
    b = rng.getrandbits(8)
    extra = b""
    if b >> 6 != 3 and b & 7 == 4:
        extra += bytes([rng.getrandbits(8)])
    return bytes([b]) + extra


def code(rng: random.Random) -> bytes:
    """One instruction's worth of bytes, with random bytes after it to fill 15."""
    out = bytearray()
    r = rng.random()
    if r < 0.3:
        out.append(0x66)
    if rng.random() < 0.05:
        out.append(rng.choice(LEGACY_PREFIXES))
    if rng.random() < 0.45:
        out.append(0x40 | rng.getrandbits(4))
        if rng.random() < 0.03:
            out.append(rng.choice((0x66, 0x40 | rng.getrandbits(4))))  # REX not last
    r = rng.random()
    if r < 0.8:
        out.append(rng.choice(SUBSET_OPCODES))
    elif r < 0.9:
        out += bytes([0x0F, rng.choice(TWO_BYTE)])
    elif r < 0.95:
        out += bytes([0x0F, rng.choice(NEAR_TWO_BYTE)])
    elif r < 0.98:
        out.append(rng.choice(NEAR_OPCODES))
    else:
        out.append(rng.getrandbits(8))
    out += _modrm(rng)
    while len(out) < 15:
        out.append(rng.getrandbits(8))
    return bytes(out)


def case(rng: random.Random, other_flags: tuple[int, ...] = OTHER_FLAGS) -> Case:
    gprs = tuple(_value(rng) for _ in range(16))
    rflags = 0x2 | (rng.getrandbits(12) & STATUS)
    for bit in other_flags:
        if rng.random() < 0.1:
            rflags |= bit
    return Case(code(rng), gprs, rflags)
