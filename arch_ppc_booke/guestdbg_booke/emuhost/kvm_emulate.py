"""Emulation of the privileged instructions a guest executes in supervisor state.

On BookE-PR every one of them traps and ``kvmppc_emulate_instruction`` emulates it; on BookE-HV
most run on the hardware in guest state. The engine always traps them, and this module gives
each the effect the guest would see on its kernel: MSR writes with the flavour's rules
(``kvm_msr.guest_write_msr``), rfi/rfci/rfdi/rfmci (``kvmppc_emul_rfi``...), SPR accesses
(``kvm_spr``), the guest TLB (``e500_mmu.c``), cache locking that always fails
(``kvmppc_e500_emul_dcbtls``), and the debug exits of ``ehpriv 1`` (``kvmppc_e500_emul_ehpriv``)
and of the software-breakpoint word (``emulate.c``, primary opcode 0).
"""

from __future__ import annotations

import enum

from .. import regs
from . import isa, kvm_msr, kvm_spr
from .isa import Priv
from .kvm_state import Kvm

L1CSR0_CUL = 0x00000400
MAS6_SPID_SHIFT = 16
MAS6_SPID0 = 0x3FFF0000
MAS6_SAS = 0x1
MAS1_TS = 0x00001000
MAS4_TSIZED_MASK = 0x00000F80
MAS4_TLBSELD_SHIFT = 28
MAS2_EPN = 0xFFFFF000
MAS2_ATTRIB_MASK = 0x7F
MAS3_U0_U3 = 0x000003C0
MAS0_NV_MASK = 0x00000FFF
EHPRIV_OC_DEBUG = 1
KVMPPC_INST_SW_BREAKPOINT = 0x00DDDD00


class Emul(enum.Enum):
    DONE = "done"
    """Emulated; the PC moves past the instruction."""
    JUMPED = "jumped"
    """Emulated; the instruction set the PC itself (return-from-interrupt)."""
    FAIL = "fail"
    """EMULATE_FAIL: nothing the kernel knows."""
    EXIT_USER = "exit_user"
    """EMULATE_EXIT_USER: a debug exit is in ``kvm_run``; PC not advanced."""


def _rfi(k: Kvm, srr0: int, srr1: int) -> Emul:
    """The new NIP is SRR0 in the new MSR's computation mode (the upper half is dropped when
    MSR[CM] becomes 0 on a 64-bit core)."""
    kvm_msr.guest_write_msr(k.arch, srr1)
    k.cpu.pc = srr0 & k.arch.ea_mask & ~3
    return Emul.JUMPED


def debug_exit(k: Kvm) -> Emul:
    """``kvmppc_e500_emul_ehpriv`` / emulate.c op 0: status 0, address = PC, no advance."""
    k.run.exit_debug(k.cpu.pc, 0)
    return Emul.EXIT_USER


def emulate_ehpriv(k: Kvm, inst: int) -> Emul:
    return debug_exit(k) if isa.get_oc(inst) == EHPRIV_OC_DEBUG else Emul.FAIL


def emulate_privileged(k: Kvm, inst: int, kind: Priv) -> Emul:
    a = k.arch
    cpu = k.cpu
    rt = isa.get_rt(inst)
    if kind is Priv.MFSPR:
        value = kvm_spr.mfspr(k, isa.get_sprn(inst))
        if value is None:
            return Emul.FAIL
        cpu.set_gpr(rt, value)
        return Emul.DONE
    if kind is Priv.MTSPR:
        ok = kvm_spr.mtspr(k, isa.get_sprn(inst), cpu.gpr(rt))
        return Emul.DONE if ok else Emul.FAIL
    if kind is Priv.MFMSR:
        cpu.set_gpr(rt, a.msr)
        return Emul.DONE
    if kind is Priv.MTMSR:
        kvm_msr.guest_write_msr(a, cpu.gpr(rt))
        return Emul.DONE
    if kind is Priv.WRTEE:
        a.msr = (a.msr & ~regs.MSR_EE) | (cpu.gpr(rt) & regs.MSR_EE)
        return Emul.DONE
    if kind is Priv.WRTEEI:
        a.msr = (a.msr & ~regs.MSR_EE) | (inst & regs.MSR_EE)
        return Emul.DONE
    if kind is Priv.RFI:
        return _rfi(k, a.srr0, a.srr1)
    if kind is Priv.RFCI:
        return _rfi(k, a.csrr0, a.csrr1)
    if kind is Priv.RFDI:
        return _rfi(k, a.dsrr0, a.dsrr1)
    if kind is Priv.RFMCI:
        return _rfi(k, a.mcsrr0, a.mcsrr1)
    if kind is Priv.TLBWE:  # e500_mmu.c: MAS2 cut to 32 bits when the guest's MSR[CM] is 0
        a.tlb.write(a.mas0, a.mas1, a.mas2 & a.ea_mask, a.mas7_3)
        return Emul.DONE
    if kind is Priv.TLBRE:  # kvmppc_e500_emul_tlbre: MAS0[NV] too
        mas1, mas2, mas7_3 = a.tlb.read(a.mas0, a.mas2)
        a.mas1, a.mas2, a.mas7_3 = mas1, mas2, mas7_3
        a.mas0 = (a.mas0 & ~MAS0_NV_MASK) | a.tlb.nv((a.mas0 >> 28) & 1)
        return Emul.DONE
    if kind is Priv.TLBSX:
        return _tlbsx(k, inst)
    if kind is Priv.TLBIVAX:
        ea = _ea_indexed(k, inst)
        a.tlb.invalidate((ea >> 3) & 1, None if ea & 0x4 else ea & ~0xFFF)
        return Emul.DONE
    if kind is Priv.TLBILX:
        ea = _ea_indexed(k, inst)
        pid = (a.mas6 >> MAS6_SPID_SHIFT) & 0xFF
        typ = rt & 3
        for sel in (0, 1):
            if typ == 0:
                a.tlb.invalidate(sel, None)
            elif typ == 1:
                a.tlb.invalidate(sel, None, pid)
            elif typ == 3:
                a.tlb.invalidate(sel, ea & ~0xFFF, pid)
        return Emul.DONE
    if kind in (Priv.TLBSYNC, Priv.DCBI, Priv.MSGSND, Priv.MSGCLR):
        return Emul.DONE
    if kind is Priv.CACHE_LOCK:
        a.l1csr0 |= L1CSR0_CUL  # "Always fail to lock the cache"
        return Emul.DONE
    if kind is Priv.MFPMR:
        cpu.set_gpr(rt, a.pmr.get(isa.get_sprn(inst), 0))
        return Emul.DONE
    if kind is Priv.MTPMR:
        a.pmr[isa.get_sprn(inst)] = cpu.gpr(rt)
        return Emul.DONE
    return Emul.FAIL


def _ea_indexed(k: Kvm, inst: int) -> int:
    ra, rb = isa.get_ra(inst), isa.get_rb(inst)
    return ((k.cpu.gpr(ra) if ra else 0) + k.cpu.gpr(rb)) & k.arch.ea_mask


def _tlbsx(k: Kvm, inst: int) -> Emul:
    """``kvmppc_e500_emul_tlbsx``: search by MAS6 SPID/SAS. A hit loads the entry into MAS0-3
    and MAS7; a miss prepares a tlbwe of MAS4's defaults: MAS0 = MAS4[TLBSELD] with TLB0's next
    victim, MAS1 = the searched PID and address space with MAS4's size and V = 0, MAS2 = the EPN
    with MAS4's attributes, MAS3 keeps only its user bits."""
    a = k.arch
    ea = _ea_indexed(k, inst)
    hit = a.tlb.search(ea, (a.mas6 >> MAS6_SPID_SHIFT) & 0xFF, a.mas6 & MAS6_SAS)
    if hit is None:
        tlbsel = (a.mas4 >> MAS4_TLBSELD_SHIFT) & 1
        victim = a.tlb.next_victim() if tlbsel == 0 else 0
        a.mas0 = (tlbsel << 28) | (victim << 16) | a.tlb.nv(tlbsel)
        a.mas1 = (
            (a.mas6 & MAS6_SPID0)
            | (MAS1_TS if a.mas6 & MAS6_SAS else 0)
            | (a.mas4 & MAS4_TSIZED_MASK)
        )
        a.mas2 = (a.mas2 & MAS2_EPN) | (a.mas4 & MAS2_ATTRIB_MASK)
        a.mas7_3 &= MAS3_U0_U3
        return Emul.DONE
    tlbsel, esel, (mas1, mas2, mas7_3) = hit
    a.mas0 = (tlbsel << 28) | (esel << 16) | a.tlb.nv(tlbsel)
    a.mas1, a.mas2, a.mas7_3 = mas1, mas2, mas7_3
    return Emul.DONE
