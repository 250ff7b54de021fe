"""The guest's own debug events when the host is not debugging: booke.c kvmppc_handle_debug
with guest_debug == 0 queues BOOKE_IRQPRIO_DEBUG for kvmppc_booke_irqprio_deliver (§3.4, §3.7)."""

from __future__ import annotations

from guestdbg_booke import regs

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
