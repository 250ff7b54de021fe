"""Interrupt delivery into the guest: booke.c kvmppc_booke_irqprio_deliver and
kvmppc_core_check_exceptions (docs/reference/kvm-debug-abi.md §3.7)."""

from __future__ import annotations

from guestdbg_booke import regs
from guestdbg_booke.emuhost import kvm_irq, kvm_state
from guestdbg_booke.emuhost.kvm_state import IVOR_PRIO

from .machine import Machine, is_hv

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_program_delivery_saves_pc_and_msr_and_keeps_ce_me_de(core: str) -> None:
    m = Machine("traps", core)
    old = regs.MSR_CE | regs.MSR_EE | regs.MSR_ME | regs.MSR_DE | regs.MSR_FP
    m.set_regs(msr=old)
    m.run()
    entry = m.vm.read_phys(m.sym["log"], 20)
    vec, srr0, srr1, _esr, msr = (int.from_bytes(entry[i : i + 4], "big") for i in range(0, 20, 4))
    gs = regs.MSR_GS if is_hv(core) else 0
    assert (vec, srr0) == (6, m.sym["trap_insn"])
    assert srr1 == old | gs
    assert msr == (old & (regs.MSR_CE | regs.MSR_ME | regs.MSR_DE)) | gs


def test_vectors_start_eye_catching_until_the_guest_programs_them(core: str) -> None:
    # kvmppc_core_vcpu_create: IVPR = 0x55550000, ivor[prio] = 0x7700 | prio * 4
    m = Machine("loop", core)
    assert m.sreg("ivpr") == 0x55550000
    for n in range(16):
        assert m.sreg("ivor_low", n) == 0x7700 | IVOR_PRIO[n] * 4


def test_the_lowest_pending_priority_is_delivered_first(core: str) -> None:
    m = Machine("loop", core)
    k = m.vcpu.kvm
    k.arch.ivpr = 0x00100000
    kvm_irq.queue(k, kvm_state.BOOKE_IRQPRIO_SYSCALL)
    kvm_irq.queue_program(k, regs.ESR_PTR)
    assert kvm_irq.check_exceptions(k)
    assert k.cpu.pc == 0x00100000 | k.arch.ivor[kvm_state.BOOKE_IRQPRIO_PROGRAM]
    assert k.arch.pending == 1 << kvm_state.BOOKE_IRQPRIO_SYSCALL
    assert k.arch.esr == regs.ESR_PTR


def test_debug_waits_for_msr_de_and_async_interrupts_for_msr_ee(core: str) -> None:
    m = Machine("loop", core)
    k = m.vcpu.kvm
    kvm_irq.queue(k, kvm_state.BOOKE_IRQPRIO_DEBUG)
    kvm_irq.queue(k, kvm_state.BOOKE_IRQPRIO_DECREMENTER)
    assert not kvm_irq.check_exceptions(k)  # MSR = 0: neither is allowed
    k.arch.msr |= regs.MSR_DE
    assert kvm_irq.check_exceptions(k)
    assert k.cpu.pc == k.arch.ivpr | k.arch.ivor[kvm_state.BOOKE_IRQPRIO_DEBUG]
    saved_msr = k.arch.dsrr1 if is_hv(core) else k.arch.csrr1
    assert saved_msr & regs.MSR_DE
    assert not k.arch.msr & regs.MSR_DE  # debug delivery keeps only MSR[ME]


def test_a_guest_critical_section_blocks_debug_delivery(core: str) -> None:
    # crit = (shared->critical == r1) && supervisor: only the synchronous classes get through
    m = Machine("loop", core)
    k = m.vcpu.kvm
    k.arch.msr |= regs.MSR_DE
    k.arch.critical = k.cpu.gpr(1)
    kvm_irq.queue(k, kvm_state.BOOKE_IRQPRIO_DEBUG)
    assert not kvm_irq.check_exceptions(k)
    kvm_irq.queue_program(k, regs.ESR_PIL)
    assert kvm_irq.check_exceptions(k)
