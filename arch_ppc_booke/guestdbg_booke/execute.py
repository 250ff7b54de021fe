"""Carrying out one guest instruction of a 32-bit e500 core (e500mc, e500v2) without the CPU:
the pure half of ``BookeVcpuDebug.execute_in_place``.

Why: a breakpoint whose condition is false must let the guest's own instruction run. Stepping it
on the CPU costs two KVM_SET_GUEST_DEBUG, a KVM_RUN and two writes of the trap word; an
instruction that only reads and writes registers can instead be computed here and written back
with one KVM_SET_REGS (``guestdbg.arch.ExecuteInPlace``).

The subset is what needs nothing but ``struct kvm_regs`` (GPRs, CR, XER, LR, CTR, PC) and can
raise nothing: integer arithmetic, logic, rotate/shift and compare instructions
(:mod:`.execute_alu`), isel, CR logical instructions and mcrf, mfcr/mtcrf, moves to and from LR,
CTR and XER, and the branches. Refused (None), so that the CPU steps them: every load and store
(whether the guest's TLB lets the access through is not visible to userspace, see
docs/conditions.md), traps, ``sc``, the rfi family, MSR and every other SPR access, isync and
the other synchronising instructions, and every encoding with a reserved bit set or an invalid
form: what a core does with those is implementation-specific, so nothing is guessed. A refusal
costs only the step this module exists to save.

XER: only SO, OV, CA (bits 32-34) and the string byte count (bits 57-63) are architected; an
XER with another bit set is refused whole, and ``mtxer`` of such a value too, because which of
those bits a core keeps is not defined (QEMU, for one, drops two of them on ``mtxer``).

Every accepted instruction is checked against Unicorn's PowerPC (QEMU TCG) by
:mod:`.fidelity.execute_diff`, one real single step per random case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .execute_alu import (
    D_FORMS,
    M32,
    X_FORMS,
    XO_FORMS,
    compare,
    compare_fields,
    d_form,
    rotate,
    s32,
)

XER_DEFINED = 0xE000007F
"""SO, OV, CA and the byte count: the XER bits the e500 cores define."""

SPR_XER, SPR_LR, SPR_CTR = 1, 8, 9


@dataclass(frozen=True, slots=True)
class Regs:
    """The registers an instruction of the subset may read or write, as 32-bit values."""

    gpr: tuple[int, ...]
    cr: int
    xer: int
    lr: int
    ctr: int
    pc: int


def execute(word: int, r: Regs) -> Regs | None:
    """The registers after the instruction ``word`` at ``r.pc``, or None when it is not one
    this module carries out (``r`` is never changed). Every value in ``r`` must fit 32 bits."""
    if r.xer & ~XER_DEFINED:
        return None
    op = word >> 26
    if op == 31:
        return _primary31(word, r)
    if op in D_FORMS or op in (20, 21, 23):
        gpr = list(r.gpr)
        out = (d_form if op in D_FORMS else rotate)(word, gpr, r.cr, r.xer)
        return None if out is None else _next(r, gpr, *out)
    if op in (10, 11):  # cmpli, cmpi
        bf = compare_fields(word)
        if bf is None:
            return None
        a = r.gpr[(word >> 16) & 31]
        imm = word & 0xFFFF
        if op == 11:
            cr = compare(r.cr, r.xer, bf, s32(a), ((imm ^ 0x8000) - 0x8000))
        else:
            cr = compare(r.cr, r.xer, bf, a, imm)
        return _next(r, None, cr, r.xer)
    if op == 18:
        return _b(word, r)
    if op == 16:
        return _bc(word, r)
    if op == 19:
        return _primary19(word, r)
    return None


def _next(r: Regs, gpr: list[int] | None, cr: int, xer: int) -> Regs:
    return Regs(r.gpr if gpr is None else tuple(gpr), cr, xer, r.lr, r.ctr, (r.pc + 4) & M32)


# -- primary 31: XO/X/A forms ------------------------------------------------------------------


def _primary31(w: int, r: Regs) -> Regs | None:
    xo10 = (w >> 1) & 0x3FF
    alu = X_FORMS.get(xo10) or XO_FORMS.get(xo10 & 0x1FF)
    if alu is not None:
        gpr = list(r.gpr)
        out = alu(w, gpr, r.cr, r.xer)
        return None if out is None else _next(r, gpr, *out)
    if xo10 & 0x1F == 15:
        return _isel(w, r)
    if w & 1:
        return None  # every other form below has bit 31 reserved
    other = _PRIMARY31_OTHER.get(xo10)
    return None if other is None else other(w, r)


def _isel(w: int, r: Regs) -> Regs | None:
    """isel rD,rA,rB,crb: rD = crb ? (rA|0) : rB. Bit 31 is reserved."""
    if w & 1:
        return None
    rt, ra, rb = (w >> 21) & 31, (w >> 16) & 31, (w >> 11) & 31
    crb = (w >> 6) & 31
    gpr = list(r.gpr)
    gpr[rt] = (r.gpr[ra] if ra else 0) if (r.cr >> (31 - crb)) & 1 else r.gpr[rb]
    return _next(r, gpr, r.cr, r.xer)


def _cmp(w: int, r: Regs) -> Regs | None:
    """cmp (xo 0) and cmpl (xo 32)."""
    bf = compare_fields(w)
    if bf is None:
        return None
    a, b = r.gpr[(w >> 16) & 31], r.gpr[(w >> 11) & 31]
    if (w >> 1) & 0x3FF == 0:
        a, b = s32(a), s32(b)
    return _next(r, None, compare(r.cr, r.xer, bf, a, b), r.xer)


def _spr(w: int) -> int:
    """The SPR number of mfspr/mtspr (its two 5-bit halves are swapped in the word)."""
    return ((w >> 16) & 31) | (((w >> 11) & 31) << 5)


def _mfspr(w: int, r: Regs) -> Regs | None:
    spr = _spr(w)
    if spr == SPR_LR:
        value = r.lr
    elif spr == SPR_CTR:
        value = r.ctr
    elif spr == SPR_XER:
        value = r.xer
    else:
        return None
    gpr = list(r.gpr)
    gpr[(w >> 21) & 31] = value
    return _next(r, gpr, r.cr, r.xer)


def _mtspr(w: int, r: Regs) -> Regs | None:
    spr = _spr(w)
    value = r.gpr[(w >> 21) & 31]
    pc = (r.pc + 4) & M32
    if spr == SPR_LR:
        return Regs(r.gpr, r.cr, r.xer, value, r.ctr, pc)
    if spr == SPR_CTR:
        return Regs(r.gpr, r.cr, r.xer, r.lr, value, pc)
    if spr == SPR_XER and not value & ~XER_DEFINED:
        return Regs(r.gpr, r.cr, value, r.lr, r.ctr, pc)
    return None


def _mfcr(w: int, r: Regs) -> Regs | None:
    """mfcr: bit 11 set would make it mfocrf, bits 12-20 are reserved."""
    if w & 0x001FF800:
        return None
    gpr = list(r.gpr)
    gpr[(w >> 21) & 31] = r.cr
    return _next(r, gpr, r.cr, r.xer)


def _mtcrf(w: int, r: Regs) -> Regs | None:
    """mtcrf: bit 11 set would make it mtocrf, bit 20 is reserved."""
    if w & 0x00100800:
        return None
    fxm = (w >> 12) & 0xFF
    mask = 0
    for n in range(8):
        if fxm & (0x80 >> n):
            mask |= 0xF0000000 >> (4 * n)
    cr = (r.cr & ~mask & M32) | (r.gpr[(w >> 21) & 31] & mask)
    return _next(r, None, cr, r.xer)


_PRIMARY31_OTHER: dict[int, Callable[[int, Regs], Regs | None]] = {
    0: _cmp,
    32: _cmp,
    339: _mfspr,
    467: _mtspr,
    19: _mfcr,
    144: _mtcrf,
}
"""Primary 31 forms with bit 31 reserved, by 10-bit extended opcode."""


# -- primary 19: CR logical, mcrf, bclr, bcctr --------------------------------------------------

_CR_LOGIC: dict[int, Callable[[int, int], int]] = {
    257: lambda a, b: a & b,  # crand
    449: lambda a, b: a | b,  # cror
    193: lambda a, b: a ^ b,  # crxor
    225: lambda a, b: 1 ^ (a & b),  # crnand
    33: lambda a, b: 1 ^ (a | b),  # crnor
    289: lambda a, b: 1 ^ a ^ b,  # creqv
    129: lambda a, b: a & (1 ^ b),  # crandc
    417: lambda a, b: a | (1 ^ b),  # crorc
}


def _primary19(w: int, r: Regs) -> Regs | None:
    xo = (w >> 1) & 0x3FF
    if xo in (16, 528):
        return _bclr_bcctr(w, r, xo == 528)
    if w & 1:
        return None
    logic = _CR_LOGIC.get(xo)
    if logic is not None:
        bt, ba, bb = (w >> 21) & 31, (w >> 16) & 31, (w >> 11) & 31
        bit = logic((r.cr >> (31 - ba)) & 1, (r.cr >> (31 - bb)) & 1)
        cr = (r.cr & ~(1 << (31 - bt)) & M32) | (bit << (31 - bt))
        return _next(r, None, cr, r.xer)
    if xo == 0:  # mcrf: bits 9-10 and 14-20 are reserved
        if w & 0x0063F800:
            return None
        bf, bfa = (w >> 23) & 7, (w >> 18) & 7
        field = (r.cr >> (28 - 4 * bfa)) & 0xF
        shift = 28 - 4 * bf
        cr = (r.cr & ~(0xF << shift) & M32) | (field << shift)
        return _next(r, None, cr, r.xer)
    return None  # isync, rfi family, and the rest


# -- branches ----------------------------------------------------------------------------------

_BO_VALID = frozenset({0, 2, 4, 5, 6, 7, 8, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 24, 25, 26, 27})
"""BO encodings whose meaning is the same in every version of the architecture: the "z" bits
zero (Power ISA Book I, BO field table). A set z bit is an invalid form to one version and an
ignored bit to another, so those are refused; the "a"/"t" hint bits change only prediction."""


def _condition(bo: int, bi: int, r: Regs) -> tuple[bool, int] | None:
    """(taken, CTR after) for BO/BI, or None for a BO outside ``_BO_VALID``."""
    if bo not in _BO_VALID:
        return None
    ctr = r.ctr
    ctr_ok = True
    if not bo & 0x04:
        ctr = (ctr - 1) & M32
        ctr_ok = (ctr == 0) if bo & 0x02 else (ctr != 0)
    cond_ok = bool(bo & 0x10) or ((r.cr >> (31 - bi)) & 1) == ((bo >> 3) & 1)
    return ctr_ok and cond_ok, ctr


def _b(w: int, r: Regs) -> Regs:
    li = ((w & 0x03FFFFFC) ^ 0x02000000) - 0x02000000
    target = (li if w & 2 else r.pc + li) & M32
    lr = (r.pc + 4) & M32 if w & 1 else r.lr
    return Regs(r.gpr, r.cr, r.xer, lr, r.ctr, target)


def _bc(w: int, r: Regs) -> Regs | None:
    cond = _condition((w >> 21) & 31, (w >> 16) & 31, r)
    if cond is None:
        return None
    taken, ctr = cond
    nxt = (r.pc + 4) & M32
    if taken:
        bd = ((w & 0xFFFC) ^ 0x8000) - 0x8000
        pc = (bd if w & 2 else r.pc + bd) & M32
    else:
        pc = nxt
    lr = nxt if w & 1 else r.lr
    return Regs(r.gpr, r.cr, r.xer, lr, ctr, pc)


def _bclr_bcctr(w: int, r: Regs, to_ctr: bool) -> Regs | None:
    """bclr/bcctr: bits 16-20 (BH in later versions of the architecture) must be zero, and a
    bcctr that decrements CTR is an invalid form. The target is the old LR or CTR."""
    if w & 0x0000F800:
        return None
    bo = (w >> 21) & 31
    if to_ctr and not bo & 0x04:
        return None
    cond = _condition(bo, (w >> 16) & 31, r)
    if cond is None:
        return None
    taken, ctr = cond
    nxt = (r.pc + 4) & M32
    pc = ((r.ctr if to_ctr else r.lr) & ~3 & M32) if taken else nxt
    lr = nxt if w & 1 else r.lr
    return Regs(r.gpr, r.cr, r.xer, lr, ctr, pc)
