"""The toy CPU: executes one instruction at a time over guest RAM, in pure Python.

Architectural state is eight 32-bit registers (``r0`` reads as zero, writes to it are lost), the
PC, ``sr`` (EXL: in an exception handler; SS: the guest single-steps itself), and the exception
registers ``epc``, ``esr``, ``cause`` and ``vbar``. An exception is taken by
:meth:`ToyCpu.enter`: ``epc`` = where to return, ``esr`` = ``sr``, ``cause`` = vector, EXL set
and SS cleared, PC = ``vbar`` + 16 * vector; ``rfe`` returns to ``epc`` with ``sr`` = ``esr``
(so a handler runs unstepped and the stepped code goes on being stepped). Whether an exception
is delivered to the guest or leaves KVM_RUN is the kernel's business
(:mod:`guestdbg_toyarch.kvm_run`), not the CPU's.
"""

from __future__ import annotations

from .isa import INSN_SIZE, OPCODES, decode
from .numbering import BUS, ILLEGAL, TRAP

MASK = 0xFFFFFFFF
SR_EXL = 0x1
SR_SS = 0x2

NONE = -1
"""``execute``: the instruction completed."""
HALTED = -2
"""``execute``: ``halt`` completed (the PC is past it)."""

_NOP, _LI, _LD, _ST, _ADDI, _B, _TRAP, _RFE, _HALT, _MTSR = (
    OPCODES[m] for m in ("nop", "li", "ld", "st", "addi", "b", "trap", "rfe", "halt", "mtsr")
)


class ToyCpu:
    def __init__(self, ram: bytearray) -> None:
        self.ram = ram
        self.gpr = [0] * 8
        self.pc = 0
        self.sr = 0
        self.epc = 0
        self.esr = 0
        self.cause = 0
        self.vbar = 0
        self.access = -1
        """Data address the last instruction accessed (-1: none); ``access_write`` says how."""
        self.access_write = False

    def fetch(self, pc: int) -> int | None:
        if pc % INSN_SIZE or not 0 <= pc <= len(self.ram) - INSN_SIZE:
            return None
        return int.from_bytes(self.ram[pc : pc + INSN_SIZE], "big")

    def execute(self, word: int) -> int:
        """Run ``word`` at the PC: NONE, HALTED, or the vector of the exception it raised (not
        entered yet; the PC still names the instruction)."""
        self.access = -1
        op, ra, rb, imm = decode(word)
        pc = self.pc
        if op == _NOP:
            pass
        elif op == _LI:
            self._set(ra, imm)
        elif op == _ADDI:
            self._set(ra, self.gpr[rb] + (imm - 0x10000 if imm & 0x8000 else imm))
        elif op in (_LD, _ST):
            addr = (self.gpr[rb] + (imm - 0x10000 if imm & 0x8000 else imm)) & MASK
            if addr % 4 or addr > len(self.ram) - 4:
                return BUS
            self.access, self.access_write = addr, op == _ST
            if op == _LD:
                self._set(ra, int.from_bytes(self.ram[addr : addr + 4], "big"))
            else:
                self.ram[addr : addr + 4] = self.gpr[ra].to_bytes(4, "big")
        elif op == _B:
            self.pc = imm
            return NONE
        elif op == _TRAP:
            return TRAP
        elif op == _RFE:
            self.pc = self.epc
            self.sr = self.esr
            return NONE
        elif op == _HALT:
            self.pc = pc + INSN_SIZE
            return HALTED
        elif op == _MTSR:
            self.sr = self.gpr[ra]
        else:
            return ILLEGAL
        self.pc = pc + INSN_SIZE
        return NONE

    def enter(self, vector: int, epc: int) -> None:
        self.epc = epc & MASK
        self.esr = self.sr
        self.cause = vector
        self.sr = (self.sr | SR_EXL) & ~SR_SS
        self.pc = (self.vbar + 16 * vector) & MASK

    def _set(self, reg: int, value: int) -> None:
        if reg:
            self.gpr[reg] = value & MASK
