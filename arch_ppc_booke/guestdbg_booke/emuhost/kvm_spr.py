"""Guest mtspr/mfspr of privileged SPRs, as KVM emulates them.

The chain is the kernel's: ``kvmppc_emulate_mtspr`` (emulate.c: SRR0/1, DEC, SPRG0-3, PIR, TB
writes ignored) -> ``kvmppc_core_emulate_mtspr_e500`` (e500_emulate.c: PID, MAS, L1CSR, HID,
MMUCSR0, IVOR32-37) -> ``kvmppc_booke_emulate_mtspr`` (booke_emulate.c: DEAR, ESR, CSRR, DSRR,
the debug registers, TSR/TCR, SPRG4-7, IVPR, IVOR0-15, MCSR). An SPR none of them knows is an
emulation failure (``None``/``False`` here); the caller decides what the guest sees.

On HV most of these are real registers the guest reaches without a trap; the values a guest sees
are the same. SPRG3-7 are also readable in problem state (SPR 259-263, no trap), so a write is
mirrored into the engine.
"""

from __future__ import annotations

from .. import regs
from . import guest_tlb, kvm_debug
from .kvm_state import CORE_IVORS, IVOR_PRIO, Kvm

L1CSR0_DCFI = 0x00000002
L1CSR0_CLFC = 0x00000100
L1CSR1_ICFI = 0x00000002
L1CSR1_ICLFR = 0x00000100
MMUCSR0_TLB0FI = 0x00000004
MMUCSR0_TLB1FI = 0x00000002
TCR_WRC_MASK = 0x30000000
U32_FIELDS = frozenset({"esr", "pid", "mas0", "mas1", "mas4", "mas6", "decar", "hid0", "hid1",
                        "pwrmgtcr0"})  # fmt: skip
"""Registers the kernel keeps in a ``u32`` (``struct kvm_vcpu_arch_shared``: esr, mas0, mas1,
mas4, mas6; ``kvm_vcpu_arch``: pid, decar, pwrmgtcr0; ``kvmppc_vcpu_e500``: hid0, hid1): a
64-bit guest's ``mtspr`` of a wider value keeps its low word
(docs/reference/kvm-debug-abi.md §10: PID, ESR and the 32-bit sregs fields stay 32 bits)."""

_SPRG = {regs.SPRN_SPRG0 + n: n for n in range(4)}
_SPRG.update({regs.SPRN_SPRG4W + n: 4 + n for n in range(4)})
_SPRG.update({regs.SPRN_SPRG8: 8, regs.SPRN_SPRG9: 9})
_USER_READABLE = {regs.SPRN_SPRG3: regs.SPRN_SPRG3}
_USER_READABLE.update({regs.SPRN_SPRG4W + n: regs.SPRN_SPRG4W + n for n in range(4)})


def _ivor(k: Kvm, sprn: int) -> int | None:
    """The IVOR number of ``sprn`` if this core's kernel emulates it, else None."""
    if regs.SPRN_IVOR0 <= sprn <= regs.SPRN_IVOR15:
        n = sprn - regs.SPRN_IVOR0
    elif regs.SPRN_IVOR32 <= sprn <= regs.SPRN_IVOR37:
        n = 32 + sprn - regs.SPRN_IVOR32
    else:
        return None
    return n if n in CORE_IVORS[k.arch.core] else None


def mtspr(k: Kvm, sprn: int, val: int) -> bool:
    a = k.arch
    val &= a.ulong  # kvmppc_emulate_mtspr takes an unsigned long
    if sprn == regs.SPRN_EPCR and a.is64:  # booke_emulate.c, CONFIG_64BIT: kvmppc_set_epcr
        a.epcr = val & 0xFFFFFFFF
        return True
    if sprn in kvm_debug.DEBUG_SPRS:
        kvm_debug.mtspr(k, sprn, val)
        return True
    if sprn in _SPRG:
        if sprn in (regs.SPRN_SPRG8, regs.SPRN_SPRG9) and not a.hv:
            return False
        a.sprg[_SPRG[sprn]] = val
        if sprn in _USER_READABLE:
            k.push_user_spr(sprn, val)
        return True
    ivor = _ivor(k, sprn)
    if ivor is not None:
        a.ivor[IVOR_PRIO[ivor]] = val & 0xFFFFFFFF  # kvm_vcpu_arch's u32 ivor[]
        return True
    simple = {
        regs.SPRN_SRR0: "srr0",
        regs.SPRN_SRR1: "srr1",
        regs.SPRN_DEAR: "dear",
        regs.SPRN_ESR: "esr",
        regs.SPRN_CSRR0: "csrr0",
        regs.SPRN_CSRR1: "csrr1",
        regs.SPRN_DSRR0: "dsrr0",
        regs.SPRN_DSRR1: "dsrr1",
        regs.SPRN_MCSRR0: "mcsrr0",
        regs.SPRN_MCSRR1: "mcsrr1",
        regs.SPRN_DECAR: "decar",
        regs.SPRN_IVPR: "ivpr",
        regs.SPRN_PID: "pid",
        regs.SPRN_HID0: "hid0",
        regs.SPRN_HID1: "hid1",
        regs.SPRN_PWRMGTCR0: "pwrmgtcr0",
        regs.SPRN_MAS0: "mas0",
        regs.SPRN_MAS1: "mas1",
        regs.SPRN_MAS2: "mas2",
        regs.SPRN_MAS4: "mas4",
        regs.SPRN_MAS6: "mas6",
    }
    if sprn in simple:
        name = simple[sprn]
        setattr(a, name, val & 0xFFFFFFFF if name in U32_FIELDS else val)
        return True
    if sprn in (regs.SPRN_TBWL, regs.SPRN_TBWU, regs.SPRN_PIR, regs.SPRN_BUCSR):
        return True  # "XXX We need to context-switch the timebase"; PIR writes are ignored
    if sprn == regs.SPRN_DEC:
        a.dec = val & 0xFFFFFFFF  # a u32; the decrementer is not modelled as a timer
        return True
    if sprn in (regs.SPRN_PID1, regs.SPRN_PID2):
        if val:
            return False
        setattr(a, "pid1" if sprn == regs.SPRN_PID1 else "pid2", val)
        return True
    if sprn == regs.SPRN_MAS3:
        a.mas7_3 = (a.mas7_3 & ~0xFFFFFFFF) | (val & 0xFFFFFFFF)
        return True
    if sprn == regs.SPRN_MAS7:
        a.mas7_3 = (a.mas7_3 & 0xFFFFFFFF) | ((val & 0xFFFFFFFF) << 32)
        return True
    if sprn == regs.SPRN_L1CSR0:
        a.l1csr0 = val & ~(L1CSR0_DCFI | L1CSR0_CLFC)
        return True
    if sprn == regs.SPRN_L1CSR1:
        a.l1csr1 = val & ~(L1CSR1_ICFI | L1CSR1_ICLFR)
        return True
    if sprn == regs.SPRN_MMUCSR0:
        if val & MMUCSR0_TLB0FI:
            a.tlb.invalidate(0, None)
        if val & MMUCSR0_TLB1FI:
            a.tlb.invalidate(1, None)
        return True
    if sprn == regs.SPRN_TSR:
        a.tsr &= ~val
        return True
    if sprn == regs.SPRN_TCR:
        if a.tcr & TCR_WRC_MASK:  # WRC is sticky once non-zero
            val = (val & ~TCR_WRC_MASK) | (a.tcr & TCR_WRC_MASK)
        a.tcr = val & 0xFFFFFFFF  # a u32
        return True
    if sprn == regs.SPRN_MCSR:
        a.mcsr &= ~val
        return True
    return False


def mfspr(k: Kvm, sprn: int) -> int | None:
    a = k.arch
    if sprn == regs.SPRN_EPCR and a.is64:
        return a.epcr
    if sprn in kvm_debug.DEBUG_SPRS:
        return kvm_debug.mfspr(k, sprn)
    if sprn in _SPRG:
        if sprn in (regs.SPRN_SPRG8, regs.SPRN_SPRG9) and not a.hv:
            return None
        if regs.SPRN_SPRG4W <= sprn <= regs.SPRN_SPRG7W and not a.hv:
            return None  # PR: "SPRG4-7 are user-readable, so we don't get a trap" - no case
        return a.sprg[_SPRG[sprn]]
    ivor = _ivor(k, sprn)
    if ivor is not None:
        return a.ivor[IVOR_PRIO[ivor]]
    simple = {
        regs.SPRN_SRR0: a.srr0,
        regs.SPRN_SRR1: a.srr1,
        regs.SPRN_PVR: a.pvr,
        regs.SPRN_PIR: a.vcpu_id,
        regs.SPRN_DEC: a.dec,
        regs.SPRN_DEAR: a.dear,
        regs.SPRN_ESR: a.esr,
        regs.SPRN_EPR: a.epr,
        regs.SPRN_CSRR0: a.csrr0,
        regs.SPRN_CSRR1: a.csrr1,
        regs.SPRN_DSRR0: a.dsrr0,
        regs.SPRN_DSRR1: a.dsrr1,
        regs.SPRN_MCSRR0: a.mcsrr0,
        regs.SPRN_MCSRR1: a.mcsrr1,
        regs.SPRN_MCSR: a.mcsr,
        regs.SPRN_TSR: a.tsr,
        regs.SPRN_TCR: a.tcr,
        regs.SPRN_DECAR: a.decar,
        regs.SPRN_IVPR: a.ivpr,
        regs.SPRN_PID: a.pid,
        regs.SPRN_PID1: a.pid1,
        regs.SPRN_PID2: a.pid2,
        regs.SPRN_MAS0: a.mas0,
        regs.SPRN_MAS1: a.mas1,
        regs.SPRN_MAS2: a.mas2,
        regs.SPRN_MAS3: a.mas7_3 & 0xFFFFFFFF,
        regs.SPRN_MAS4: a.mas4,
        regs.SPRN_MAS6: a.mas6,
        regs.SPRN_MAS7: a.mas7_3 >> 32,
        regs.SPRN_TLB0CFG: guest_tlb.TLBCFG[a.core][0],
        regs.SPRN_TLB1CFG: guest_tlb.TLBCFG[a.core][1],
        regs.SPRN_L1CSR0: a.l1csr0,
        regs.SPRN_L1CSR1: a.l1csr1,
        regs.SPRN_HID0: a.hid0,
        regs.SPRN_HID1: a.hid1,
        regs.SPRN_SVR: a.svr,
        regs.SPRN_MMUCSR0: 0,
        regs.SPRN_MMUCFG: guest_tlb.MMUCFG,
        regs.SPRN_PWRMGTCR0: a.pwrmgtcr0,
    }
    return simple.get(sprn)
