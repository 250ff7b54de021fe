"""The toy ISA's encoding and a tiny two-pass assembler for it.

Every instruction is one big-endian 32-bit word: opcode (8 bits), ``ra`` (4), ``rb`` (4), a
16-bit immediate. GNU binutils cannot assemble a made-up ISA, so guest programs are assembled
here; syntax (one instruction or ``label:`` per line, ``#`` comments)::

    nop | halt | rfe
    li   ra, imm          ra = imm                 (zero-extended)
    addi ra, rb, imm      ra = rb + imm            (sign-extended)
    ld   ra, imm(rb)      ra = word at rb + imm    (aligned, else a bus exception)
    st   ra, imm(rb)      word at rb + imm = ra
    b    target           pc = target              (absolute)
    trap imm              trap exception; ``trap 0xffff`` is the debugger's breakpoint word
    mtsr ra               sr = ra                  (sr.SS: the guest single-steps itself)
    .org addr | .word value
"""

from __future__ import annotations

import re

from guestdbg.errors import InvalidRequest

OPCODES = {
    "nop": 0x00,
    "li": 0x01,
    "ld": 0x02,
    "st": 0x03,
    "addi": 0x04,
    "b": 0x05,
    "trap": 0x06,
    "rfe": 0x07,
    "halt": 0x08,
    "mtsr": 0x09,
}
MNEMONICS = {v: k for k, v in OPCODES.items()}
OPERANDS = {
    "nop": "",
    "halt": "",
    "rfe": "",
    "li": "ri",
    "addi": "rri",
    "ld": "rm",
    "st": "rm",
    "b": "i",
    "trap": "i",
    "mtsr": "r",
}
INSN_SIZE = 4
BREAKPOINT_IMM = 0xFFFF
BREAKPOINT_WORD = (OPCODES["trap"] << 24) | BREAKPOINT_IMM

_MEM = re.compile(r"^(.+)\((r[0-7])\)$")


def encode(op: str, ra: int = 0, rb: int = 0, imm: int = 0) -> int:
    return (OPCODES[op] << 24) | (ra << 20) | (rb << 16) | (imm & 0xFFFF)


def decode(word: int) -> tuple[int, int, int, int]:
    """(opcode, ra, rb, imm16)."""
    return word >> 24, (word >> 20) & 0xF, (word >> 16) & 0xF, word & 0xFFFF


def assemble(source: str, origin: int = 0) -> tuple[bytes, dict[str, int]]:
    """The image (loaded at ``origin``) and its labels; InvalidRequest names the bad line."""
    labels: dict[str, int] = {}
    lines: list[tuple[int, int, str, list[str]]] = []
    addr = origin
    for lineno, raw in enumerate(source.splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        while ":" in text:
            label, text = (s.strip() for s in text.split(":", 1))
            labels[label] = addr
        if not text:
            continue
        op, _, rest = text.partition(" ")
        args = [a.strip() for a in rest.split(",")] if rest.strip() else []
        if op == ".org":
            new = _number(args[0], {}, lineno)
            if new < addr:
                raise InvalidRequest(f"toy asm line {lineno}: .org {new:#x} goes backwards")
            addr = new
            continue
        lines.append((lineno, addr, op, args))
        addr += INSN_SIZE
    image = bytearray()
    for lineno, at, op, args in lines:
        image += bytes(at - origin - len(image))
        image += _assemble_one(lineno, op, args, labels).to_bytes(INSN_SIZE, "big")
    return bytes(image), labels


def _assemble_one(lineno: int, op: str, args: list[str], labels: dict[str, int]) -> int:
    if op == ".word":
        return _number(args[0], labels, lineno) & 0xFFFFFFFF
    if op not in OPCODES:
        raise InvalidRequest(f"toy asm line {lineno}: unknown instruction {op!r}")
    shape = OPERANDS[op]
    if len(args) != len(shape):
        raise InvalidRequest(f"toy asm line {lineno}: {op} takes {len(shape)} operands")
    regs: list[int] = []
    imm = 0
    for kind, arg in zip(shape, args, strict=True):
        if kind == "r":
            regs.append(_register(arg, lineno))
        elif kind == "i":
            imm = _number(arg, labels, lineno)
        else:
            m = _MEM.match(arg)
            if m is None:
                raise InvalidRequest(f"toy asm line {lineno}: {arg!r} is not imm(rN)")
            imm = _number(m.group(1), labels, lineno)
            regs.append(_register(m.group(2), lineno))
    if not -0x8000 <= imm <= 0xFFFF:
        raise InvalidRequest(f"toy asm line {lineno}: {imm:#x} does not fit 16 bits")
    regs += [0] * (2 - len(regs))
    return encode(op, regs[0], regs[1], imm)


def _register(text: str, lineno: int) -> int:
    if re.fullmatch(r"r[0-7]", text) is None:
        raise InvalidRequest(f"toy asm line {lineno}: {text!r} is not a register r0-r7")
    return int(text[1])


def _number(text: str, labels: dict[str, int], lineno: int) -> int:
    if text in labels:
        return labels[text]
    try:
        return int(text, 0)
    except ValueError:
        raise InvalidRequest(f"toy asm line {lineno}: {text!r} is no number or label") from None
