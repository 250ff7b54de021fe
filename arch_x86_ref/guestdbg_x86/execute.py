"""Decode and carry out one register-only x86-64 instruction, exactly as the CPU would.

Why: a breakpoint hit whose condition is false must get the vCPU past the instruction under
it. On a host that ignores RFLAGS.RF (this machine's ``kvm_pvm``) that is a single step with the
breakpoint disarmed - two KVM_SET_GUEST_DEBUG and a KVM_RUN more - while carrying the
instruction out here costs one register write (:mod:`.in_place` decides when it may).

The subset, 64-bit mode only (Intel SDM vol. 2, each instruction's page; operand sizes as in
vol. 1 §3.6): the prefixes 0x66 (once) and one REX right before the opcode, nothing else;

* ``mov`` r/r (88-8B), r/imm (B0-BF, C6/C7 /0), ``xchg`` r/r (86/87, 90+r; 90 itself is NOP);
* the eight ALU operations (00-3D rows, 80/81/83), ``test`` (84/85, A8/A9, F6/F7 /0),
  ``not``/``neg`` (F6/F7 /2, /3), ``inc``/``dec`` (FE/FF /0, /1);
* ``lea`` (8D) with any addressing form, RIP-relative included (it computes, it never reads);
* ``movzx``/``movsx`` (0F B6/B7/BE/BF) and ``movsxd`` with REX.W (63);
* ``nop`` (90, 0F 1F /0 with any ModRM: the hint NOP never touches its operand);
* ``jmp`` rel8/rel32 (EB, E9) and ``jcc`` rel8/rel32 (70-7F, 0F 80-8F), without 0x66 (Intel
  ignores it there, AMD truncates RIP to 16 bits).

Register operands only (ModRM.mod = 3) except for ``lea`` and the hint NOP. Everything else is
refused (:func:`decode` returns None): the caller then lets the CPU run the instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .execute_alu import ARITH as _ARITH
from .execute_alu import (
    CF,
    CMP,
    ENCODING_TO_KVM,
    M64,
    MASK,
    OF,
    PF,
    RF,
    SF,
    ZF,
    alu,
    inc_dec,
    neg,
    read,
    sign_extend,
    write,
)

MAX_LENGTH = 15
"""The longest x86 instruction; longer is #GP."""

Apply = Callable[[list[int], int, int], tuple[int, int]]
"""``(gprs, next_rip, rflags) -> (rip, rflags)``: carries the instruction out on ``gprs`` (the
GPRs in ``struct kvm_regs`` order, :mod:`.execute_alu`, changed in place); ``next_rip`` is the
address after it."""


class Truncated(Exception):
    """The bytes given end inside the instruction: fetch more (the next page) and decode again."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A decoded instruction the executor can carry out."""

    length: int
    text: str
    """A short description (for tests and messages), e.g. ``add r/m32, imm8``."""
    apply: Apply
    jumps: bool = False
    """It may set RIP elsewhere than past itself (the target must be canonical)."""


class _Cursor:
    def __init__(self, code: bytes) -> None:
        self.code = code
        self.i = 0

    def byte(self) -> int:
        if self.i >= len(self.code):
            raise Truncated
        b = self.code[self.i]
        self.i += 1
        return b

    def imm(self, size: int, signed: bool = True) -> int:
        n = size // 8
        if self.i + n > len(self.code):
            raise Truncated
        raw = int.from_bytes(self.code[self.i : self.i + n], "little")
        self.i += n
        return sign_extend(raw, size) if signed else raw


@dataclass(frozen=True, slots=True)
class _ModRM:
    mod: int
    reg: int
    """ModRM.reg with REX.R."""
    rm: int
    """ModRM.rm with REX.B (a register when ``mod`` is 3)."""
    address: Callable[[list[int], int], int] | None
    """For a memory operand: ``(gprs, next_rip) -> linear address`` (what ``lea`` computes)."""


def _modrm(c: _Cursor, rex: int) -> _ModRM:
    b = c.byte()
    mod, reg, rm = b >> 6, ((b >> 3) & 7) | (rex & 4) << 1, b & 7
    if mod == 3:
        return _ModRM(mod, reg, rm | (rex & 1) << 3, None)
    base: int | None
    index: int | None = None
    scale = 1
    rip_relative = False
    if rm == 4:
        sib = c.byte()
        scale = 1 << (sib >> 6)
        idx = ((sib >> 3) & 7) | (rex & 2) << 2
        index = None if idx == 4 else idx  # rsp cannot be an index; r12 can
        base = (sib & 7) | (rex & 1) << 3
        if sib & 7 == 5 and mod == 0:
            base = None  # disp32, no base (REX.B does not change that)
    elif rm == 5 and mod == 0:
        base, rip_relative = None, True
    else:
        base = rm | (rex & 1) << 3
    if mod == 1:
        disp = c.imm(8)
    elif mod == 2 or base is None:
        disp = c.imm(32)
    else:
        disp = 0

    kbase = None if base is None else ENCODING_TO_KVM[base]
    kindex = None if index is None else ENCODING_TO_KVM[index]

    def address(gprs: list[int], next_rip: int) -> int:
        a = disp + (next_rip if rip_relative else 0)
        if kbase is not None:
            a += gprs[kbase]
        if kindex is not None:
            a += gprs[kindex] * scale
        return a & M64

    return _ModRM(mod, reg, rm | (rex & 1) << 3, address)


# -- instruction builders: each returns the Apply of one instruction ------------------------


def _alu_rr(op: int, dst: int, src: int, size: int, rex: bool) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        res, flags = alu(op, read(g, dst, size, rex), read(g, src, size, rex), fl, size)
        if op != CMP:
            write(g, dst, size, rex, res)
        return nxt, (fl & ~_ARITH) | flags

    return apply


def _alu_ri(op: int, dst: int, imm: int, size: int, rex: bool) -> Apply:
    imm &= MASK[size]

    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        res, flags = alu(op, read(g, dst, size, rex), imm, fl, size)
        if op != CMP:
            write(g, dst, size, rex, res)
        return nxt, (fl & ~_ARITH) | flags

    return apply


def _test(dst: int, src: int | None, imm: int, size: int, rex: bool) -> Apply:
    imm &= MASK[size]

    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        b = read(g, src, size, rex) if src is not None else imm
        _, flags = alu(4, read(g, dst, size, rex), b, fl, size)  # AND, result dropped
        return nxt, (fl & ~_ARITH) | flags

    return apply


def _mov_rr(dst: int, src: int, size: int, rex: bool) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        write(g, dst, size, rex, read(g, src, size, rex))
        return nxt, fl

    return apply


def _mov_ri(dst: int, imm: int, size: int, rex: bool) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        write(g, dst, size, rex, imm)
        return nxt, fl

    return apply


def _xchg(a: int, b: int, size: int, rex: bool) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        va, vb = read(g, a, size, rex), read(g, b, size, rex)
        write(g, a, size, rex, vb)
        write(g, b, size, rex, va)
        return nxt, fl

    return apply


def _unary(kind: str, dst: int, size: int, rex: bool) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        v = read(g, dst, size, rex)
        if kind == "not":
            write(g, dst, size, rex, ~v)
            return nxt, fl
        if kind == "neg":
            res, flags = neg(v, size)
        else:
            res, flags = inc_dec(v, kind == "dec", fl, size)
        write(g, dst, size, rex, res)
        return nxt, (fl & ~_ARITH) | flags

    return apply


def _extend(dst: int, src: int, size: int, from_size: int, signed: bool, rex: bool) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        v = read(g, src, from_size, rex)
        write(g, dst, size, rex, sign_extend(v, from_size) if signed else v)
        return nxt, fl

    return apply


def _lea(dst: int, address: Callable[[list[int], int], int], size: int) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        write(g, dst, size, True, address(g, nxt))
        return nxt, fl

    return apply


def _nop(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
    return nxt, fl


def _jmp(rel: int) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        return (nxt + rel) & M64, fl

    return apply


def condition(cc: int, fl: int) -> bool:
    """Whether condition code ``cc`` (the low nibble of Jcc) holds for ``fl``."""
    base = cc >> 1
    if base == 0:
        r = bool(fl & OF)
    elif base == 1:
        r = bool(fl & CF)
    elif base == 2:
        r = bool(fl & ZF)
    elif base == 3:
        r = bool(fl & (CF | ZF))
    elif base == 4:
        r = bool(fl & SF)
    elif base == 5:
        r = bool(fl & PF)
    elif base == 6:
        r = bool(fl & SF) != bool(fl & OF)
    else:
        r = bool(fl & ZF) or bool(fl & SF) != bool(fl & OF)
    return r != bool(cc & 1)


def _jcc(cc: int, rel: int) -> Apply:
    def apply(g: list[int], nxt: int, fl: int) -> tuple[int, int]:
        return ((nxt + rel) & M64 if condition(cc, fl) else nxt), fl

    return apply


# -- the decoder ---------------------------------------------------------------------------

_UNARY = {2: "not", 3: "neg"}


def decode(code: bytes) -> Plan | None:
    """The instruction at the start of ``code`` if it is in the subset, else None. Raises
    :class:`Truncated` when ``code`` ends inside an instruction that could be in it."""
    c = _Cursor(code[:MAX_LENGTH])
    try:
        return _decode(c)
    except Truncated:
        if len(code) >= MAX_LENGTH:
            return None  # longer than an instruction can be: #GP, the CPU's to raise
        raise


def _decode(c: _Cursor) -> Plan | None:
    b = c.byte()
    o16 = False
    if b == 0x66:
        o16 = True
        b = c.byte()
    rex = 0
    if 0x40 <= b <= 0x4F:
        rex = b
        b = c.byte()
    has_rex = rex != 0
    size = 64 if rex & 8 else 16 if o16 else 32
    plan = _one_byte(c, b, rex, has_rex, size, o16)
    if plan is None:
        return None
    apply, text, jumps = plan
    return Plan(c.i, text, apply, jumps)


_Found = tuple[Apply, str, bool] | None


def _one_byte(c: _Cursor, b: int, rex: int, has_rex: bool, size: int, o16: bool) -> _Found:
    if b < 0x40 and b & 7 < 6:  # the ALU rows
        op, form = b >> 3, b & 7
        osz = 8 if form in (0, 2, 4) else size
        if form == 4 or form == 5:
            imm = c.imm(8 if form == 4 else min(osz, 32))
            return _alu_ri(op, 0, imm, osz, has_rex), f"alu{op} acc, imm{osz}", False
        m = _modrm(c, rex)
        if m.mod != 3:
            return None
        dst, src = (m.rm, m.reg) if form < 2 else (m.reg, m.rm)
        return _alu_rr(op, dst, src, osz, has_rex), f"alu{op} r{osz}, r{osz}", False
    if b in (0x80, 0x81, 0x83):
        m = _modrm(c, rex)
        osz = 8 if b == 0x80 else size
        imm = c.imm(8 if b != 0x81 else min(osz, 32))
        if m.mod != 3:
            return None
        return _alu_ri(m.reg & 7, m.rm, imm, osz, has_rex), f"alu{m.reg & 7} r, imm", False
    if b in (0x84, 0x85):
        m = _modrm(c, rex)
        osz = 8 if b == 0x84 else size
        if m.mod != 3:
            return None
        return _test(m.rm, m.reg, 0, osz, has_rex), f"test r{osz}, r{osz}", False
    if b in (0xA8, 0xA9):
        osz = 8 if b == 0xA8 else size
        imm = c.imm(min(osz, 32))
        return _test(0, None, imm, osz, has_rex), f"test acc, imm{osz}", False
    if 0x88 <= b <= 0x8B:
        m = _modrm(c, rex)
        osz = 8 if b in (0x88, 0x8A) else size
        if m.mod != 3:
            return None
        dst, src = (m.rm, m.reg) if b < 0x8A else (m.reg, m.rm)
        return _mov_rr(dst, src, osz, has_rex), f"mov r{osz}, r{osz}", False
    if b == 0x8D:
        m = _modrm(c, rex)
        if m.address is None:
            return None  # lea with a register operand is #UD
        return _lea(m.reg, m.address, size), f"lea r{size}, m", False
    if 0xB0 <= b <= 0xBF:
        reg = (b & 7) | (rex & 1) << 3
        osz = 8 if b < 0xB8 else size
        imm = c.imm(osz, signed=False)
        return _mov_ri(reg, imm, osz, has_rex), f"mov r{osz}, imm{osz}", False
    if b in (0xC6, 0xC7):
        m = _modrm(c, rex)
        osz = 8 if b == 0xC6 else size
        imm = c.imm(min(osz, 32))
        if m.mod != 3 or m.reg & 7 != 0:
            return None  # a store, or XABORT/XBEGIN
        return _mov_ri(m.rm, imm, osz, has_rex), f"mov r{osz}, imm", False
    if b in (0x86, 0x87):
        m = _modrm(c, rex)
        osz = 8 if b == 0x86 else size
        if m.mod != 3:
            return None  # xchg with memory is a locked access
        return _xchg(m.rm, m.reg, osz, has_rex), f"xchg r{osz}, r{osz}", False
    if 0x90 <= b <= 0x97:
        reg = (b & 7) | (rex & 1) << 3
        if reg == 0:
            return _nop, "nop", False  # 90 is NOP, not xchg eax, eax (no zero-extension)
        return _xchg(0, reg, size, has_rex), f"xchg acc, r{size}", False
    if b in (0xF6, 0xF7, 0xFE, 0xFF):
        return _group(c, b, rex, has_rex, size)
    if b == 0x63:
        m = _modrm(c, rex)
        if m.mod != 3 or not rex & 8 or o16:
            return None  # movsxd without REX.W is discouraged and differs between vendors
        return _extend(m.reg, m.rm, 64, 32, True, has_rex), "movsxd r64, r32", False
    if b in (0xEB, 0xE9) or 0x70 <= b <= 0x7F:
        if o16:
            return None
        rel = c.imm(8 if b != 0xE9 else 32)
        if b in (0xEB, 0xE9):
            return _jmp(rel), "jmp rel", True
        return _jcc(b & 0xF, rel), f"j{b & 0xF:x} rel8", True
    if b == 0x0F:
        return _two_byte(c, c.byte(), rex, has_rex, size, o16)
    return None


def _group(c: _Cursor, b: int, rex: int, has_rex: bool, size: int) -> _Found:
    m = _modrm(c, rex)
    osz = 8 if b in (0xF6, 0xFE) else size
    op = m.reg & 7
    if b in (0xF6, 0xF7):
        if op == 0:
            imm = c.imm(min(osz, 32))
            if m.mod != 3:
                return None
            return _test(m.rm, None, imm, osz, has_rex), f"test r{osz}, imm", False
        if op not in _UNARY or m.mod != 3:
            return None  # /1 (an undocumented alias of test), mul, imul, div, idiv
        return _unary(_UNARY[op], m.rm, osz, has_rex), f"{_UNARY[op]} r{osz}", False
    if op > 1 or m.mod != 3:
        return None  # call, jmp, push... or a memory operand
    kind = "dec" if op else "inc"
    return _unary(kind, m.rm, osz, has_rex), f"{kind} r{osz}", False


def _two_byte(c: _Cursor, b: int, rex: int, has_rex: bool, size: int, o16: bool) -> _Found:
    if b == 0x1F:
        m = _modrm(c, rex)
        if m.reg & 7 != 0:
            return None
        return _nop, "nop r/m", False
    if b in (0xB6, 0xB7, 0xBE, 0xBF):
        m = _modrm(c, rex)
        if m.mod != 3:
            return None
        src_size = 8 if b & 1 == 0 else 16
        signed = b >= 0xBE
        name = "movsx" if signed else "movzx"
        return _extend(m.reg, m.rm, size, src_size, signed, has_rex), f"{name} r, r", False
    if 0x80 <= b <= 0x8F:
        if o16:
            return None
        rel = c.imm(32)
        return _jcc(b & 0xF, rel), f"j{b & 0xF:x} rel32", True
    return None


def execute(plan: Plan, gprs: list[int], rip: int, rflags: int) -> tuple[int, int]:
    """Carry ``plan`` out at ``rip`` on ``gprs`` (changed in place): the new (rip, rflags).
    RF is cleared, as the CPU clears it once an instruction completes (SDM vol. 3 §18.3.1.1)."""
    new_rip, new_flags = plan.apply(gprs, (rip + plan.length) & M64, rflags)
    return new_rip, new_flags & ~RF
