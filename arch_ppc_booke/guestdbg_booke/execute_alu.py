"""The integer half of :mod:`.execute`: arithmetic, logic, rotate/shift and compare instructions
of the 32-bit e500 cores (Power ISA Book I, Fixed-Point Facility), as pure functions of words
and register values.

Everything is computed on the low 32 bits, in the 32-bit mode the e500mc and e500v2 always run
in: CR0 compares the 32-bit result as a signed number, XER[CA] is the carry out of bit 32 (the
result's most significant bit) and XER[OV] is set when the carries out of bits 32 and 33 differ,
i.e. when the exact signed result does not fit 32 bits; XER[SO] keeps every OV that was set.
Each function returns None for a form it does not carry out (the caller then single-steps the
instruction on the CPU itself), so an unknown or doubtful encoding never gets guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

M32 = 0xFFFFFFFF
XER_SO = 0x80000000
XER_OV = 0x40000000
XER_CA = 0x20000000
SIGN = 0x80000000

Alu = Callable[[int, list[int], int, int], tuple[int, int] | None]
"""``(word, gprs, cr, xer) -> (cr, xer)`` after writing the target GPR into ``gprs``, or None
(refused: ``gprs`` is the caller's scratch copy, so a refusal needs no undo)."""


def s32(value: int) -> int:
    """``value``'s low 32 bits as a signed number."""
    return ((value & M32) ^ SIGN) - SIGN


def cr0(cr: int, result: int, xer: int) -> int:
    """CR with field 0 set from a 32-bit ``result`` (LT, GT, EQ) and XER[SO] (after the
    instruction's own OV update, as the ISA orders it)."""
    v = s32(result)
    nibble = 8 if v < 0 else 4 if v > 0 else 2
    if xer & XER_SO:
        nibble |= 1
    return (cr & 0x0FFFFFFF) | (nibble << 28)


def set_ov(xer: int, overflow: bool) -> int:
    """XER after an OE=1 form: OV = ``overflow``, SO |= OV."""
    if overflow:
        return xer | XER_OV | XER_SO
    return xer & ~XER_OV


def set_ca(xer: int, carry: bool) -> int:
    return xer | XER_CA if carry else xer & ~XER_CA


def _sx16(value: int) -> int:
    return ((value & 0xFFFF) ^ 0x8000) - 0x8000


def _rt_ra_rb(w: int) -> tuple[int, int, int]:
    return (w >> 21) & 31, (w >> 16) & 31, (w >> 11) & 31


# -- sums: add/subf families and the D-form carrying adds ----------------------------------------

_A_PLAIN, _A_NOT = 0, 1
_B_RB, _B_ZERO, _B_ONES = 0, 1, 2
_C_ZERO, _C_ONE, _C_CA = 0, 1, 2

_SUMS: dict[int, tuple[int, int, int, bool]] = {
    266: (_A_PLAIN, _B_RB, _C_ZERO, False),  # add
    10: (_A_PLAIN, _B_RB, _C_ZERO, True),  # addc
    138: (_A_PLAIN, _B_RB, _C_CA, True),  # adde
    202: (_A_PLAIN, _B_ZERO, _C_CA, True),  # addze
    234: (_A_PLAIN, _B_ONES, _C_CA, True),  # addme
    40: (_A_NOT, _B_RB, _C_ONE, False),  # subf
    8: (_A_NOT, _B_RB, _C_ONE, True),  # subfc
    136: (_A_NOT, _B_RB, _C_CA, True),  # subfe
    200: (_A_NOT, _B_ZERO, _C_CA, True),  # subfze
    232: (_A_NOT, _B_ONES, _C_CA, True),  # subfme
    104: (_A_NOT, _B_ZERO, _C_ONE, False),  # neg
}
"""XO-form (primary 31) sums ``a + b + c`` by 9-bit extended opcode: the subtract forms add
the one's complement of rA, as the ISA defines them, so one carry/overflow rule covers all."""


def _sum(a: int, b: int, c: int) -> tuple[int, bool, bool]:
    """(32-bit result, carry out of bit 32, signed overflow) of ``a + b + c``."""
    total = a + b + c
    exact = s32(a) + s32(b) + c
    return total & M32, total > M32, not -SIGN <= exact < SIGN


def xo_sum(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
    rt, ra, rb = _rt_ra_rb(w)
    a_kind, b_kind, c_kind, carrying = _SUMS[(w >> 1) & 0x1FF]
    if b_kind != _B_RB and rb:
        return None  # addze/addme/subfze/subfme/neg: the rB field is reserved
    a = gpr[ra] ^ M32 if a_kind == _A_NOT else gpr[ra]
    b = gpr[rb] if b_kind == _B_RB else 0 if b_kind == _B_ZERO else M32
    c = 1 if c_kind == _C_ONE else (1 if xer & XER_CA else 0) if c_kind == _C_CA else 0
    result, carry, overflow = _sum(a, b, c)
    gpr[rt] = result
    if carrying:
        xer = set_ca(xer, carry)
    if w & 0x400:
        xer = set_ov(xer, overflow)
    if w & 1:
        cr = cr0(cr, result, xer)
    return cr, xer


def xo_muldiv(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
    """mullw, mulhw, mulhwu, divw, divwu. A divide by zero, and divw of 0x80000000 by -1, leave
    rD (and CR0 LT/GT/EQ) undefined: the hardware's value cannot be known, so they are refused."""
    rt, ra, rb = _rt_ra_rb(w)
    xo = (w >> 1) & 0x1FF
    oe = bool(w & 0x400)
    a, b = gpr[ra], gpr[rb]
    overflow = False
    if xo == 235:  # mullw
        product = s32(a) * s32(b)
        result = product & M32
        overflow = not -SIGN <= product < SIGN
    elif xo in (75, 11):  # mulhw, mulhwu: bit 21 is reserved, not OE
        if oe:
            return None
        result = ((s32(a) * s32(b)) >> 32) & M32 if xo == 75 else (a * b) >> 32
    elif xo == 491:  # divw
        sa, sb = s32(a), s32(b)
        if sb == 0 or (sa == -SIGN and sb == -1):
            return None
        q = abs(sa) // abs(sb)
        result = (-q if (sa < 0) != (sb < 0) else q) & M32
    else:  # 459 divwu
        if b == 0:
            return None
        result = a // b
    gpr[rt] = result
    if oe:
        xer = set_ov(xer, overflow)
    if w & 1:
        cr = cr0(cr, result, xer)
    return cr, xer


XO_FORMS: dict[int, Alu] = {xo: xo_sum for xo in _SUMS}
XO_FORMS.update({xo: xo_muldiv for xo in (235, 75, 11, 491, 459)})
"""Primary 31, by 9-bit extended opcode (bit 21 is OE)."""


# -- X-form logic and shifts (primary 31): rS in bits 6-10, rA the target ------------------------


def _logic(op: Callable[[int, int], int]) -> Alu:
    def run(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
        rs, ra, rb = _rt_ra_rb(w)
        result = op(gpr[rs], gpr[rb]) & M32
        gpr[ra] = result
        return (cr0(cr, result, xer) if w & 1 else cr), xer

    return run


def _or(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
    """``or rX,rX,rX`` (Rc=0) moves nothing, and Power cores give some of them a meaning of
    their own (priority and wait hints): refused, since what an e500 does with one is not
    written down here."""
    rs, ra, rb = _rt_ra_rb(w)
    if rs == ra == rb and not w & 1:
        return None
    return _logic(lambda s, b: s | b)(w, gpr, cr, xer)


def _unary(op: Callable[[int], int]) -> Alu:
    """extsb, extsh, cntlzw: the rB field is reserved."""

    def run(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
        rs, ra, rb = _rt_ra_rb(w)
        if rb:
            return None
        result = op(gpr[rs]) & M32
        gpr[ra] = result
        return (cr0(cr, result, xer) if w & 1 else cr), xer

    return run


def _shift_left(s: int, b: int) -> int:
    n = b & 0x3F
    return 0 if n & 0x20 else s << n


def _shift_right(s: int, b: int) -> int:
    n = b & 0x3F
    return 0 if n & 0x20 else s >> n


def _sra(s: int, n: int) -> tuple[int, bool]:
    """(result, CA) of an algebraic right shift by ``n`` (0..63): CA is set when the source is
    negative and any 1 bit was shifted out; a shift of 32 or more leaves the sign everywhere."""
    negative = bool(s & SIGN)
    if n & 0x20:
        return (M32 if negative else 0), negative
    lost = s & ((1 << n) - 1)
    return (s32(s) >> n) & M32, negative and lost != 0


def _sraw(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
    rs, ra, rb = _rt_ra_rb(w)
    n = gpr[rb] & 0x3F if (w >> 1) & 0x3FF == 792 else rb  # srawi: SH is the rB field
    result, carry = _sra(gpr[rs], n)
    gpr[ra] = result
    xer = set_ca(xer, carry)
    return (cr0(cr, result, xer) if w & 1 else cr), xer


X_FORMS: dict[int, Alu] = {
    28: _logic(lambda s, b: s & b),  # and
    444: _or,  # or
    316: _logic(lambda s, b: s ^ b),  # xor
    476: _logic(lambda s, b: ~(s & b)),  # nand
    124: _logic(lambda s, b: ~(s | b)),  # nor
    60: _logic(lambda s, b: s & ~b),  # andc
    412: _logic(lambda s, b: s | ~b),  # orc
    284: _logic(lambda s, b: ~(s ^ b)),  # eqv
    24: _logic(_shift_left),  # slw
    536: _logic(_shift_right),  # srw
    792: _sraw,  # sraw
    824: _sraw,  # srawi
    954: _unary(lambda s: ((s & 0xFF) ^ 0x80) - 0x80),  # extsb
    922: _unary(lambda s: ((s & 0xFFFF) ^ 0x8000) - 0x8000),  # extsh
    26: _unary(lambda s: 32 - (s & M32).bit_length()),  # cntlzw
}
"""Primary 31, by 10-bit extended opcode; Rc (bit 31) sets CR0 in every one."""


# -- rotates (M-form) ------------------------------------------------------------------------


def rotl32(value: int, n: int) -> int:
    n &= 31
    return ((value << n) | (value >> (32 - n))) & M32


def mask32(mb: int, me: int) -> int:
    """Ones from bit ``mb`` to bit ``me`` (bit 0 the most significant), wrapping round when
    ``mb > me``."""
    head = M32 >> mb
    tail = (M32 << (31 - me)) & M32
    return head & tail if mb <= me else head | tail


def rotate(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
    """rlwimi (20), rlwinm (21), rlwnm (23)."""
    op = w >> 26
    rs, ra, rb = _rt_ra_rb(w)
    n = gpr[rb] & 31 if op == 23 else rb
    m = mask32((w >> 6) & 31, (w >> 1) & 31)
    rotated = rotl32(gpr[rs], n)
    result = (rotated & m) | (gpr[ra] & ~m & M32) if op == 20 else rotated & m
    gpr[ra] = result
    return (cr0(cr, result, xer) if w & 1 else cr), xer


# -- D-form ------------------------------------------------------------------------------------


def d_form(w: int, gpr: list[int], cr: int, xer: int) -> tuple[int, int] | None:
    """addi, addis, addic, addic., subfic, mulli, andi., andis., ori, oris, xori, xoris."""
    op = w >> 26
    rt, ra, _ = _rt_ra_rb(w)
    imm = w & 0xFFFF
    simm = _sx16(imm) & M32
    if op == 14:  # addi: rA=0 means 0
        gpr[rt] = ((gpr[ra] if ra else 0) + simm) & M32
    elif op == 15:  # addis
        gpr[rt] = ((gpr[ra] if ra else 0) + (imm << 16)) & M32
    elif op in (12, 13, 8):  # addic, addic., subfic: rA=0 means r0
        a = gpr[ra] ^ M32 if op == 8 else gpr[ra]
        result, carry, _ = _sum(a, simm, 1 if op == 8 else 0)
        gpr[rt] = result
        xer = set_ca(xer, carry)
        if op == 13:
            cr = cr0(cr, result, xer)
    elif op == 7:  # mulli
        gpr[rt] = (s32(gpr[ra]) * _sx16(imm)) & M32
    else:  # logical immediates: rS in bits 6-10, rA the target
        s = gpr[rt]
        if op == 28:
            result = s & imm
        elif op == 29:
            result = s & (imm << 16)
        elif op == 24:
            result = s | imm
        elif op == 25:
            result = s | (imm << 16)
        elif op == 26:
            result = s ^ imm
        else:  # 27
            result = s ^ (imm << 16)
        gpr[ra] = result
        if op in (28, 29):
            cr = cr0(cr, result, xer)
    return cr, xer


D_FORMS = frozenset({14, 15, 12, 13, 8, 7, 28, 29, 24, 25, 26, 27})


# -- compares ------------------------------------------------------------------------------------


def compare(cr: int, xer: int, bf: int, a: int, b: int) -> int:
    """CR field ``bf`` from comparing ``a`` and ``b`` (already signed or unsigned as the
    instruction wants), with SO copied from XER."""
    nibble = 8 if a < b else 4 if a > b else 2
    if xer & XER_SO:
        nibble |= 1
    shift = 28 - 4 * bf
    return (cr & ~(0xF << shift) & M32) | (nibble << shift)


def compare_fields(w: int) -> int | None:
    """BF of cmp/cmpl/cmpi/cmpli, or None when bit 9 (reserved) or L (a doubleword compare,
    an invalid form on a 32-bit core) is set."""
    if w & 0x00600000:
        return None
    return (w >> 23) & 7
