"""Interrupt delivery into the guest: ``kvmppc_booke_irqprio_deliver`` and its callers
(docs/reference/kvm-debug-abi.md).

Pending interrupts are a bit per BOOKE_IRQPRIO; before each guest entry the lowest pending one
that the guest's MSR allows is delivered (``kvmppc_core_check_exceptions``): save NIP and MSR in
the class's save/restore pair, NIP = IVPR | IVOR[prio], ESR/DEAR from the queued values for the
storage/alignment/program classes, MSR &= the class mask (through ``kvmppc_set_msr``).

Debug interrupts are "debug class" (DSRR0/1, ``rfdi``) on e500mc, e5500 and e6500, whose host
CPUs have CPU_FTR_DEBUG_LVL_EXC, and critical class (CSRR0/1, ``rfci``) on e500v2.

On a 64-bit host (e5500, e6500) NIP and the save/restore registers are 64-bit (``unsigned
long``), SRR1 stays the 32-bit MSR, and the handler runs with MSR[CM] = EPCR[ICM]
(``#if defined(CONFIG_64BIT)`` in ``kvmppc_booke_irqprio_deliver``).
"""

from __future__ import annotations

from .. import regs
from . import kvm_msr
from .kvm_state import (
    BOOKE_IRQPRIO_ALIGNMENT,
    BOOKE_IRQPRIO_AP_UNAVAIL,
    BOOKE_IRQPRIO_CRITICAL,
    BOOKE_IRQPRIO_DATA_STORAGE,
    BOOKE_IRQPRIO_DBELL,
    BOOKE_IRQPRIO_DBELL_CRIT,
    BOOKE_IRQPRIO_DEBUG,
    BOOKE_IRQPRIO_DECREMENTER,
    BOOKE_IRQPRIO_DTLB_MISS,
    BOOKE_IRQPRIO_EXTERNAL,
    BOOKE_IRQPRIO_FIT,
    BOOKE_IRQPRIO_FP_UNAVAIL,
    BOOKE_IRQPRIO_INST_STORAGE,
    BOOKE_IRQPRIO_ITLB_MISS,
    BOOKE_IRQPRIO_MACHINE_CHECK,
    BOOKE_IRQPRIO_MAX,
    BOOKE_IRQPRIO_PROGRAM,
    BOOKE_IRQPRIO_SPE_FP_DATA,
    BOOKE_IRQPRIO_SPE_FP_ROUND,
    BOOKE_IRQPRIO_SPE_UNAVAIL,
    BOOKE_IRQPRIO_SYSCALL,
    BOOKE_IRQPRIO_WATCHDOG,
    Kvm,
)

_UPDATE_DEAR = {BOOKE_IRQPRIO_DTLB_MISS, BOOKE_IRQPRIO_DATA_STORAGE, BOOKE_IRQPRIO_ALIGNMENT}
_UPDATE_ESR = _UPDATE_DEAR | {BOOKE_IRQPRIO_INST_STORAGE, BOOKE_IRQPRIO_PROGRAM}
_NONCRIT_SYNC = _UPDATE_ESR | {
    BOOKE_IRQPRIO_ITLB_MISS,
    BOOKE_IRQPRIO_SYSCALL,
    BOOKE_IRQPRIO_FP_UNAVAIL,
    BOOKE_IRQPRIO_SPE_UNAVAIL,
    BOOKE_IRQPRIO_SPE_FP_DATA,
    BOOKE_IRQPRIO_SPE_FP_ROUND,
    BOOKE_IRQPRIO_AP_UNAVAIL,
}
_CRIT = {BOOKE_IRQPRIO_WATCHDOG, BOOKE_IRQPRIO_CRITICAL, BOOKE_IRQPRIO_DBELL_CRIT}
_NONCRIT_ASYNC = {
    BOOKE_IRQPRIO_DECREMENTER,
    BOOKE_IRQPRIO_FIT,
    BOOKE_IRQPRIO_EXTERNAL,
    BOOKE_IRQPRIO_DBELL,
}
_KEEP = {BOOKE_IRQPRIO_DECREMENTER, BOOKE_IRQPRIO_FIT}


def queue(k: Kvm, prio: int) -> None:
    """``kvmppc_booke_queue_irqprio``."""
    k.arch.pending |= 1 << prio


def dequeue(k: Kvm, prio: int) -> None:
    k.arch.pending &= ~(1 << prio)


def queue_program(k: Kvm, esr: int) -> None:
    """``kvmppc_core_queue_program``."""
    k.arch.queued_esr = esr
    queue(k, BOOKE_IRQPRIO_PROGRAM)


def queue_alignment(k: Kvm, dear: int, esr: int) -> None:
    k.arch.queued_dear = dear
    k.arch.queued_esr = esr
    queue(k, BOOKE_IRQPRIO_ALIGNMENT)


def deliver(k: Kvm, prio: int) -> bool:
    """``kvmppc_booke_irqprio_deliver``: True when delivered."""
    a = k.arch
    msr = a.msr
    # "Truncate crit indicators in 32 bit mode" tests MSR_SF, bit 63, which a BookE MSR (a u32
    # in kvmppc_set_msr) never has: the compare is on 32 bits on every BookE host
    crit = (a.critical & 0xFFFFFFFF) == (k.cpu.gpr(1) & 0xFFFFFFFF) and not msr & regs.MSR_PR
    if prio in _NONCRIT_SYNC:
        allowed, mask, cls = True, regs.MSR_CE | regs.MSR_ME | regs.MSR_DE, "noncrit"
    elif prio in _CRIT:
        allowed, mask, cls = bool(msr & regs.MSR_CE) and not crit, regs.MSR_ME, "crit"
    elif prio == BOOKE_IRQPRIO_MACHINE_CHECK:
        allowed, mask, cls = bool(msr & regs.MSR_ME) and not crit, 0, "mc"
    elif prio in _NONCRIT_ASYNC:
        allowed = bool(msr & regs.MSR_EE) and not crit
        mask, cls = regs.MSR_CE | regs.MSR_ME | regs.MSR_DE, "noncrit"
    elif prio == BOOKE_IRQPRIO_DEBUG:
        allowed, mask = bool(msr & regs.MSR_DE) and not crit, regs.MSR_ME
        cls = "dbg" if a.hv else "crit"
    else:
        return False
    if not allowed:
        return False
    nip = k.cpu.pc
    if cls == "noncrit":
        a.srr0, a.srr1 = nip, msr
    elif cls == "crit":
        a.csrr0, a.csrr1 = nip, msr
    elif cls == "dbg":
        a.dsrr0, a.dsrr1 = nip, msr
    else:
        a.mcsrr0, a.mcsrr1 = nip, msr
    k.cpu.pc = (a.ivpr | a.ivor[prio]) & a.ulong
    if prio in _UPDATE_ESR:
        a.esr = a.queued_esr
    if prio in _UPDATE_DEAR:
        a.dear = a.queued_dear
    new_msr = msr & mask
    if a.is64 and a.epcr & regs.SPRN_EPCR_ICM:
        new_msr |= regs.MSR_CM
    kvm_msr.set_msr(a, new_msr)
    if prio not in _KEEP:
        dequeue(k, prio)
    return True


def check_exceptions(k: Kvm) -> bool:
    """``kvmppc_core_check_exceptions``: deliver the first deliverable pending interrupt."""
    pending = k.arch.pending
    prio = 0
    while pending >> prio and prio < BOOKE_IRQPRIO_MAX:
        if pending >> prio & 1 and deliver(k, prio):
            return True
        prio += 1
    return False
