"""Register access and arithmetic flags for :mod:`.execute`, as the CPU defines them.

Registers are a list in ``struct kvm_regs`` order (rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp,
r8-r15), as the vCPU hands them over, so nothing is reordered per instruction; an instruction
names them by their encoding number (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15: how ModRM
and REX count), which :data:`ENCODING_TO_KVM` maps. Writes follow 64-bit mode's rules (Intel
SDM vol. 1 §3.4.1.1): a 32-bit result is zero-extended into the whole register, an 8- or 16-bit
result replaces only its part, and without a REX prefix byte registers 4-7 are AH, CH, DH, BH.

Flags (SDM vol. 1 §3.4.3.1 and appendix A, each instruction's "Flags Affected"): CF, PF, AF,
ZF, SF and OF are computed from the operands and the result, never from a table of special
cases. For AND, OR, XOR and TEST the SDM leaves AF undefined; every x86 CPU measured clears it
(this machine's, through ``tests/x86/test_execute_differential.py``), and that is what is
written here - the differential check is what keeps it honest.
"""

from __future__ import annotations

CF = 1 << 0
PF = 1 << 2
AF = 1 << 4
ZF = 1 << 6
SF = 1 << 7
TF = 1 << 8
IF = 1 << 9
DF = 1 << 10
OF = 1 << 11
RF = 1 << 16
ARITH = CF | PF | AF | ZF | SF | OF
"""The six status flags an arithmetic instruction writes."""

M64 = (1 << 64) - 1
MASK = {8: 0xFF, 16: 0xFFFF, 32: 0xFFFF_FFFF, 64: M64}
SIGN = {8: 0x80, 16: 0x8000, 32: 0x8000_0000, 64: 1 << 63}

_PARITY = tuple(PF if bin(n).count("1") % 2 == 0 else 0 for n in range(256))
"""PF for each low byte of a result: set when it has an even number of one bits."""

ADD, OR, ADC, SBB, AND, SUB, XOR, CMP = range(8)
"""ALU operations in the order of their opcode rows (00, 08, ..., 38) and of ModRM.reg in
80/81/83."""


ENCODING_TO_KVM = (0, 2, 3, 1, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15)
"""GPR number n in ModRM/REX encoding order is ``kvm_regs`` field ENCODING_TO_KVM[n]."""
_K = ENCODING_TO_KVM


def read(gprs: list[int], reg: int, size: int, rex: bool) -> int:
    """The value of register ``reg`` (encoding number) at ``size`` bits; byte registers 4-7
    without REX are AH-BH."""
    if size == 8 and not rex and 4 <= reg < 8:
        return (gprs[_K[reg - 4]] >> 8) & 0xFF
    return gprs[_K[reg]] & MASK[size]


def write(gprs: list[int], reg: int, size: int, rex: bool, value: int) -> None:
    """Write ``value`` to register ``reg`` (encoding number) at ``size`` bits with 64-bit
    mode's merge rules."""
    if size == 64:
        gprs[_K[reg]] = value & M64
    elif size == 32:
        gprs[_K[reg]] = value & 0xFFFF_FFFF
    elif size == 16:
        k = _K[reg]
        gprs[k] = (gprs[k] & ~0xFFFF) | (value & 0xFFFF)
    elif not rex and 4 <= reg < 8:
        k = _K[reg - 4]
        gprs[k] = (gprs[k] & ~0xFF00) | ((value & 0xFF) << 8)
    else:
        k = _K[reg]
        gprs[k] = (gprs[k] & ~0xFF) | (value & 0xFF)


def szp(result: int, size: int) -> int:
    """SF, ZF and PF of a ``size``-bit result."""
    flags = _PARITY[result & 0xFF]
    if result == 0:
        flags |= ZF
    if result & SIGN[size]:
        flags |= SF
    return flags


def alu(op: int, a: int, b: int, rflags: int, size: int) -> tuple[int, int]:
    """One of the eight ALU operations on ``size``-bit operands: (result, the six status
    flags). ``rflags`` gives the carry ADC and SBB add in."""
    mask = MASK[size]
    if op in (ADD, ADC):
        carry = rflags & CF if op == ADC else 0
        full = a + b + carry
        res = full & mask
        flags = szp(res, size) | (CF if full > mask else 0)
        if (a ^ res) & (b ^ res) & SIGN[size]:
            flags |= OF
        return res, flags | ((a ^ b ^ res) & AF)
    if op in (SUB, CMP, SBB):
        borrow = rflags & CF if op == SBB else 0
        res = (a - b - borrow) & mask
        flags = szp(res, size) | (CF if a < b + borrow else 0)
        if (a ^ b) & (a ^ res) & SIGN[size]:
            flags |= OF
        return res, flags | ((a ^ b ^ res) & AF)
    if op == AND:
        res = a & b
    elif op == OR:
        res = a | b
    else:
        res = a ^ b
    return res, szp(res, size)


def inc_dec(value: int, dec: bool, rflags: int, size: int) -> tuple[int, int]:
    """INC or DEC: the flags of ADD/SUB 1, except CF, which keeps its value."""
    res, flags = alu(SUB if dec else ADD, value, 1, 0, size)
    return res, (flags & ~CF) | (rflags & CF)


def neg(value: int, size: int) -> tuple[int, int]:
    """NEG: 0 - value, with CF set unless the operand was 0."""
    res, flags = alu(SUB, 0, value, 0, size)
    return res, flags


def sign_extend(value: int, bits: int) -> int:
    """``value``'s low ``bits`` bits as a signed number, in 64-bit two's complement."""
    value &= (1 << bits) - 1
    if value & (1 << (bits - 1)):
        value -= 1 << bits
    return value & M64
