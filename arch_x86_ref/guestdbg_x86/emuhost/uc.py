"""The x86-64 side of Unicorn: register ids and a 64-bit CPU.

Everything arch-neutral (typed names, register banks, slices, the instruction counter) is
:mod:`guestdbg.emuhost.unicorn`, re-exported here for the x86 modules.
"""

from __future__ import annotations

from unicorn import x86_const

from guestdbg.emuhost.unicorn import (
    UC_ARCH_X86,
    UC_ERR_INSN_INVALID,
    UC_HOOK_CODE,
    UC_HOOK_INTR,
    UC_HOOK_MEM_READ_PROT,
    UC_HOOK_MEM_WRITE,
    UC_HOOK_MEM_WRITE_PROT,
    UC_MEM_WRITE_PROT,
    UC_MODE_64,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    InstructionCount,
    RegisterBank,
    Uc,
    UcError,
    errno_of,
    new_uc,
)

__all__ = [
    "UC_ERR_INSN_INVALID",
    "UC_HOOK_CODE",
    "UC_HOOK_INTR",
    "UC_HOOK_MEM_READ_PROT",
    "UC_HOOK_MEM_WRITE",
    "UC_HOOK_MEM_WRITE_PROT",
    "UC_MEM_WRITE_PROT",
    "UC_PROT_ALL",
    "UC_PROT_EXEC",
    "UC_PROT_READ",
    "UC_PROT_WRITE",
    "RegisterBank",
    "Uc",
    "UcError",
    "X",
    "errno_of",
    "instruction_count",
    "new_x86_64",
]

X = x86_const
"""Register ids (``X.UC_X86_REG_RIP``...)."""

NOP = b"\x90"


def new_x86_64() -> Uc:
    return new_uc(UC_ARCH_X86, UC_MODE_64)


def instruction_count(uc: Uc) -> InstructionCount:
    return InstructionCount(uc, UC_ARCH_X86, UC_MODE_64, NOP)
