"""The guest's own debug events when the host is not debugging: booke.c kvmppc_handle_debug
with guest_debug == 0 queues BOOKE_IRQPRIO_DEBUG for kvmppc_booke_irqprio_deliver
(docs/reference/kvm-debug-abi.md §3.4, §3.7)."""

from __future__ import annotations

from guestdbg_booke import regs
from guestdbg_booke.emuhost import kvm_debug, kvm_irq, kvm_state

from .machine import Machine


def dlog(m: Machine, n: int) -> list[tuple[int, int, int, int]]:
    raw = m.vm.read_phys(m.sym["dlog"], 16 * n)
    words = [int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16 * n, 4)]
    return [tuple(words[i : i + 4]) for i in range(0, len(words), 4)]  # type: ignore[misc]


def test_guest_iac_dac_ic_and_trap_events_reach_the_guests_debug_handler(core: str) -> None:
    m = Machine("guestdebug", core)
    assert m.run_to_done() == 6
    s = m.sym
    events = [(srr0, dbsr) for srr0, dbsr, _msr, _srr1 in dlog(m, 6)]
    assert events == [
        (s["iac_target"], regs.DBSR_IAC1),  # before the instruction
        (s["dac_store"], regs.DBSR_DAC1W),  # before the store, which is suppressed...
        (s["ic_first"] + 4, regs.DBSR_IC),  # after each completed instruction
        (s["ic_first"] + 8, regs.DBSR_IC),
        (s["ic_first"] + 12, regs.DBSR_IC),
        (s["tie_trap"], regs.DBSR_TIE),  # instead of the trap's program interrupt
    ]
    assert m.word(s["dac_word"]) == 0x77  # ...and runs once the handler disarmed the DAC


def test_debug_interrupts_use_dsrr_on_e500mc_and_csrr_on_e500v2(core: str) -> None:
    # set_guest_dsrr: DSRR0/1 with CPU_FTR_DEBUG_LVL_EXC (e500mc), else CSRR0/1
    m = Machine("guestdebug", core)
    m.run_to_done()
    csrr0 = m.sreg("csrr0")
    assert csrr0 == (0 if core == "e500mc" else m.sym["tie_trap"] + 4)  # handler skipped it


def test_debug_delivery_saves_the_msr_and_keeps_only_msr_me(core: str) -> None:
    m = Machine("guestdebug", core)
    m.set_regs(msr=regs.MSR_ME | regs.MSR_CE | regs.MSR_EE)
    m.run_to_done()
    gs = regs.MSR_GS if core == "e500mc" else 0
    for _srr0, _dbsr, msr, srr1 in dlog(m, 6):
        assert srr1 == gs | regs.MSR_ME | regs.MSR_CE | regs.MSR_EE | regs.MSR_DE
        assert msr == gs | regs.MSR_ME


def test_a_supervisor_only_iac_fires_on_hv_but_never_on_pr(core: str) -> None:
    # BookE-PR runs every guest instruction with the hardware's MSR[PR] = 1
    # (shadow_msr = MSR_USER | ...), so DBCR1[IAC1US] = supervisor never matches there
    m = Machine("iac_us", core)
    assert m.run_to_done() == (1 if core == "e500mc" else 0)


def test_a_taken_branch_raises_the_branch_taken_event_before_it_executes(core: str) -> None:
    # e500 manual §8.4.4: only taken branches, taken before execution (suppressed, xSRR0 = the
    # branch); not recognized with MSR[DE] = 0
    m = Machine("guestbt", core)
    srr0, dbsr = m.checkpoints()
    assert (srr0, dbsr) == (m.sym["taken"], regs.DBSR_BT)
    assert m.gpr(26) == 1  # exactly one event: the not-taken branch raised none


def test_dbsr_write_one_to_clear_dequeues_the_pending_debug_interrupt(core: str) -> None:
    # booke_emulate.c SPRN_DBSR: dbsr &= ~val; if nothing but IDE is left, dequeue the interrupt
    m = Machine("loop", core)
    k = m.vcpu.kvm
    k.arch.dbsr = regs.DBSR_IAC1 | regs.DBSR_DAC1W | regs.DBSR_IDE
    kvm_irq.queue(k, kvm_state.BOOKE_IRQPRIO_DEBUG)
    kvm_debug.mtspr(k, regs.SPRN_DBSR, regs.DBSR_IAC1)
    assert k.arch.pending == 1 << kvm_state.BOOKE_IRQPRIO_DEBUG
    kvm_debug.mtspr(k, regs.SPRN_DBSR, regs.DBSR_DAC1W)
    assert k.arch.dbsr == regs.DBSR_IDE
    assert k.arch.pending == 0


def test_a_trap_event_with_msr_de_clear_becomes_a_program_interrupt(core: str) -> None:
    # kvmppc_handle_debug, guest_debug == 0: "Inject a program interrupt if trap debug is not
    # allowed" - ESR[PTR] - and no debug interrupt, since MSR[DE] is clear
    m = Machine("loop", core)
    k = m.vcpu.kvm
    k.arch.dbsr = regs.DBSR_TIE
    k.arch.dbg_reg.dbcr0 = regs.DBCR0_IDM | regs.DBCR0_TIE
    assert not kvm_debug.handle_debug(k)
    assert k.arch.pending == 1 << kvm_state.BOOKE_IRQPRIO_PROGRAM
    assert k.arch.queued_esr == regs.ESR_PTR
