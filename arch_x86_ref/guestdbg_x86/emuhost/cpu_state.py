"""``struct kvm_regs`` and ``struct kvm_sregs`` over a Unicorn x86-64 CPU.

The bytes are the kernel's (layout from :func:`guestdbg_x86.abi.layout`, little-endian). Unicorn
keeps no descriptor caches a caller can read, so the hidden part of each segment (base, limit,
attributes) is remembered from the last KVM_SET_SREGS; the selector, FS/GS bases, descriptor
tables, control registers and EFER are read live. KVM_SET_SREGS refuses the combinations
``kvm_is_valid_sregs`` refuses (long mode without PAE, LMA without LME+PG) and, like every
ioctl here, changes nothing when it fails (the CPU context is saved first and restored).
"""

from __future__ import annotations

import errno

from guestdbg.errors import KernelError

from .. import abi
from .uc import RegisterBank, Uc, UcError, X

MSR_EFER = 0xC0000080
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
RFLAGS_FIXED_1 = 0x2
APIC_BASE_RESET = 0xFEE00900
"""KVM's reset value: enabled, BSP, at 0xfee00000."""

GPRS = (
    ("rax", X.UC_X86_REG_RAX), ("rbx", X.UC_X86_REG_RBX), ("rcx", X.UC_X86_REG_RCX),
    ("rdx", X.UC_X86_REG_RDX), ("rsi", X.UC_X86_REG_RSI), ("rdi", X.UC_X86_REG_RDI),
    ("rsp", X.UC_X86_REG_RSP), ("rbp", X.UC_X86_REG_RBP), ("r8", X.UC_X86_REG_R8),
    ("r9", X.UC_X86_REG_R9), ("r10", X.UC_X86_REG_R10), ("r11", X.UC_X86_REG_R11),
    ("r12", X.UC_X86_REG_R12), ("r13", X.UC_X86_REG_R13), ("r14", X.UC_X86_REG_R14),
    ("r15", X.UC_X86_REG_R15), ("rip", X.UC_X86_REG_RIP), ("rflags", X.UC_X86_REG_RFLAGS),
)  # fmt: skip
SEGMENTS = (
    ("cs", X.UC_X86_REG_CS), ("ds", X.UC_X86_REG_DS), ("es", X.UC_X86_REG_ES),
    ("fs", X.UC_X86_REG_FS), ("gs", X.UC_X86_REG_GS), ("ss", X.UC_X86_REG_SS),
)  # fmt: skip
SEGMENT_FIELDS = (
    "base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g", "avl",
    "unusable",
)  # fmt: skip
CONTROL = (
    ("cr0", X.UC_X86_REG_CR0), ("cr2", X.UC_X86_REG_CR2), ("cr3", X.UC_X86_REG_CR3),
    ("cr4", X.UC_X86_REG_CR4), ("cr8", X.UC_X86_REG_CR8),
)  # fmt: skip

_R = "struct kvm_regs"
_S = "struct kvm_sregs"


def _reset_sregs() -> bytearray:
    """KVM's sregs after vCPU creation (real mode at 0xf000:0xfff0), the shadow's start."""
    lay = abi.layout()
    s = lay.new(_S)
    for name, _ in SEGMENTS:
        for field, value in (("limit", 0xFFFF), ("type", 3), ("present", 1), ("s", 1)):
            lay.field(_S, name, field).put(s, value)
    lay.field(_S, "cs", "selector").put(s, 0xF000)
    lay.field(_S, "cs", "base").put(s, 0xFFFF0000)
    lay.field(_S, "cs", "type").put(s, 0xB)
    for table, typ in (("tr", 0xB), ("ldt", 2)):
        lay.field(_S, table, "limit").put(s, 0xFFFF)
        lay.field(_S, table, "type").put(s, typ)
        lay.field(_S, table, "present").put(s, 1)
    lay.field(_S, "gdt", "limit").put(s, 0xFFFF)
    lay.field(_S, "idt", "limit").put(s, 0xFFFF)
    lay.field(_S, "cr0").put(s, 0x60000010)
    lay.field(_S, "apic_base").put(s, APIC_BASE_RESET)
    return s


class CpuState:
    """Reads and writes one Unicorn CPU in KVM's register structures."""

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        lay = abi.layout()
        self._regs_size = lay.sizeof(_R)
        self._gpr_fields = [(lay.field(_R, name), reg) for name, reg in GPRS]
        self._gpr_bank = RegisterBank(uc, [reg for _, reg in GPRS])
        self._rip_bank = RegisterBank(uc, [X.UC_X86_REG_RIP])
        self._rip = lay.field(_R, "rip")
        self._seg = {
            name: {f: lay.field(_S, name, f) for f in SEGMENT_FIELDS}
            for name in (*(n for n, _ in SEGMENTS), "tr", "ldt")
        }
        self._ctl = [(lay.field(_S, name), reg) for name, reg in CONTROL]
        self._dt = {
            t: (lay.field(_S, t, "base"), lay.field(_S, t, "limit")) for t in ("gdt", "idt")
        }
        self._efer = lay.field(_S, "efer")
        self._bitmap = [lay.field(_S, "interrupt_bitmap", i) for i in range(4)]
        self.shadow = _reset_sregs()
        """The last KVM_SET_SREGS image: the segments' hidden parts live here."""

    # -- kvm_regs ---------------------------------------------------------------------------

    def get_regs(self) -> bytearray:
        buf = bytearray(self._regs_size)
        values = self._gpr_bank.read()
        for (field, _), value in zip(self._gpr_fields, values, strict=True):
            field.put(buf, value)
        return buf

    def set_regs(self, regs: bytes) -> None:
        values = [f.get(regs) for f, _ in self._gpr_fields]
        values[-1] |= RFLAGS_FIXED_1
        self._gpr_bank.write(values)

    def rip(self) -> int:
        return self._rip_bank.read()[0]

    # -- kvm_sregs --------------------------------------------------------------------------

    def get_sregs(self) -> bytearray:
        uc = self.uc
        buf = bytearray(self.shadow)
        for name, reg in SEGMENTS:
            self._seg[name]["selector"].put(buf, uc.reg_read(reg))
        self._seg["fs"]["base"].put(buf, uc.reg_read(X.UC_X86_REG_FS_BASE))
        self._seg["gs"]["base"].put(buf, uc.reg_read(X.UC_X86_REG_GS_BASE))
        for table, reg in (("gdt", X.UC_X86_REG_GDTR), ("idt", X.UC_X86_REG_IDTR)):
            _, base, limit, _ = uc.reg_read(reg)
            self._dt[table][0].put(buf, base)
            self._dt[table][1].put(buf, limit)
        for field, reg in self._ctl:
            field.put(buf, uc.reg_read(reg))
        self._efer.put(buf, uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER))
        for f in self._bitmap:
            f.put(buf, 0)
        return buf

    def set_sregs(self, sregs: bytes) -> None:
        cr0 = self._ctl[0][0].get(sregs)
        cr4 = self._ctl[3][0].get(sregs)
        efer = self._efer.get(sregs)
        long_mode = bool(efer & EFER_LME and cr0 & CR0_PG)
        if (long_mode and not cr4 & CR4_PAE) or bool(efer & EFER_LMA) != long_mode:
            raise KernelError("KVM_SET_SREGS", errno.EINVAL, "inconsistent EFER/CR0/CR4")
        uc = self.uc
        saved = uc.context_save()
        try:
            uc.reg_write(X.UC_X86_REG_CR4, cr4)
            uc.reg_write(X.UC_X86_REG_CR3, self._ctl[2][0].get(sregs))
            uc.reg_write(X.UC_X86_REG_MSR, (MSR_EFER, efer))
            uc.reg_write(X.UC_X86_REG_CR0, cr0)
            uc.reg_write(X.UC_X86_REG_CR2, self._ctl[1][0].get(sregs))
            uc.reg_write(X.UC_X86_REG_CR8, self._ctl[4][0].get(sregs))
            for table, reg in (("gdt", X.UC_X86_REG_GDTR), ("idt", X.UC_X86_REG_IDTR)):
                base, limit = (f.get(sregs) for f in self._dt[table])
                uc.reg_write(reg, (0, base, limit, 0))
            for name, reg in SEGMENTS:
                uc.reg_write(reg, self._seg[name]["selector"].get(sregs))
            uc.reg_write(X.UC_X86_REG_FS_BASE, self._seg["fs"]["base"].get(sregs))
            uc.reg_write(X.UC_X86_REG_GS_BASE, self._seg["gs"]["base"].get(sregs))
            tr = self._seg["tr"]
            uc.reg_write(
                X.UC_X86_REG_TR,
                (tr["selector"].get(sregs), tr["base"].get(sregs), tr["limit"].get(sregs), 0),
            )
        except UcError as e:
            uc.context_restore(saved)
            raise KernelError("KVM_SET_SREGS", errno.EINVAL, f"the CPU refused it: {e}") from e
        self.shadow = bytearray(sregs)

    def tss_base(self) -> int:
        return int(self._seg["tr"]["base"].get(self.shadow))

    def cpl(self) -> int:
        return int(self.uc.reg_read(X.UC_X86_REG_CS)) & 3
