"""The guest's own breakpoint instruction goes back to the guest as the hardware would deliver it.

With USE_SW_BP set, ``kvmppc_handle_exit`` turns every execution of the software-breakpoint word
into a status-0 KVM_EXIT_DEBUG (on BookE-PR the emulator does so from guest supervisor state even
without it, ``emulate.c`` primary opcode 0; docs/reference/kvm-debug-abi.md §3.5). An exit
no host point claims is the guest running that word itself, so QEMU's ``kvm_handle_debug``
injects the program interrupt the hardware would have raised: illegal instruction, ESR[PIL],
SRR0 = the word (same document, §5.2). The injection goes through KVM_SET_REGS/SREGS as
``kvmppc_booke_irqprio_deliver`` lays it out (§3.7).
"""

from __future__ import annotations

import pytest

from guestdbg.arch import OwnershipPolicy
from guestdbg.events import DebugEvent, EventKind, Reinject, Resume, StopKind
from guestdbg.filter import ReinjectionFilter
from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_GUESTDBG_ENABLE
from guestdbg.numbering import ExceptionId
from guestdbg.points import DebugPoint, PointKind
from guestdbg_booke import abi, numbering, regs

from .conftest import MakeSession
from .harness import HostIo, Machine, run_to_done, run_to_stop, stop_of

ROUNDS = 3


def handler_log(m: Machine, n: int) -> list[tuple[int, int, int, int]]:
    """The guest handler's entries: (SRR0, SRR1, ESR, MSR read just before the trap)."""
    raw = m.vm.read_phys(m.sym["log"], 16 * n)
    words = [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]
    return [(words[i], words[i + 1], words[i + 2], words[i + 3]) for i in range(0, len(words), 4)]


def selftrap(core: str, flavour: str) -> Machine:
    """The guest, with its own trap words being the flavour's breakpoint instruction."""
    m = Machine("booke_selftrap", core, sw_break_flavour=flavour)
    insn = m.one_reg(abi.KVM_REG_PPC_DEBUG_INST).to_bytes(4, "big")
    for label in ("own_trap_1", "own_trap_2"):
        m.vm.write_phys(m.sym[label], insn)
    return m


@pytest.mark.parametrize("policy", OwnershipPolicy.ALL)
@pytest.mark.parametrize("flavour", ["dddd00", "ehpriv"])
def test_the_guests_own_breakpoint_word_runs_its_handler_once_each_and_is_never_reported(
    core: str, flavour: str, policy: str, session: MakeSession
) -> None:
    """Under guest-priority the host's traps are ``ehpriv 1`` and USE_SW_BP stays off, so some
    of the guest's words reach it straight from the kernel (0x00dddd00 on e500mc) and others
    still exit (``ehpriv 1``; anything of primary opcode 0 from PR supervisor code): either way
    the handler runs once per word."""
    m = selftrap(core, flavour)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io, policy=policy)
    site = m.sym["host_site"]
    s.insert_point(DebugPoint(PointKind.SW_BREAK, site, 4))  # host-priority: USE_SW_BP from now
    stops = run_to_done(s, io)
    assert stops[:-1] == [(StopKind.SW_BREAK, site, None)] * ROUNDS
    assert stops[-1][0] is StopKind.HALT
    assert io.done == 2 * ROUNDS
    entries = handler_log(m, 2 * ROUNDS)
    traps = [m.sym["own_trap_1"], m.sym["own_trap_2"]] * ROUNDS
    assert [(srr0, esr) for srr0, _, esr, _ in entries] == [(t, regs.ESR_PIL) for t in traps]
    for _, srr1, _, msr_at_trap in entries:
        assert srr1 == msr_at_trap  # SRR1 = the MSR when the word ran
    by_reason = s.filter_stats().by_reason
    exits = policy == OwnershipPolicy.HOST_PRIORITY or flavour == "ehpriv" or core == "e500v2"
    reinjected = 2 * ROUNDS if exits else 0
    assert (by_reason.get("reinject", 0), s.stats.injected) == (reinjected, reinjected)


def test_a_caught_guest_trap_is_a_pending_program_interrupt_named_in_both_numberspaces(
    core: str, session: MakeSession
) -> None:
    """``monitor catch on`` stops before the reinjection, so the verdict can be looked at."""
    m = selftrap(core, "dddd00")
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym["host_site"], 4))
    s.monitor("catch on")
    trap = m.sym["own_trap_1"]
    assert stop_of(run_to_stop(s)) == (StopKind.GUEST_EVENT, trap, None)
    pending = s.ports[0].pending
    assert pending == Reinject(numbering.PROGRAM, trap, {"esr": regs.ESR_PIL, "srr0": trap})
    assert pending.exception == ExceptionId("booke.ivor", 6)
    assert numbering.TABLE.convert(pending.exception, numbering.IFO) == ExceptionId(
        "booke.ifo", 0xE0
    )
    assert numbering.TABLE.convert(ExceptionId("booke.ifo", 0xE0), numbering.IVOR).number == 6
    assert "program" in numbering.TABLE.describe(pending.exception)
    assert "pending booke.ivor:0x6" in s.monitor("vcpus")
    s.monitor("catch off")
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, m.sym["host_site"], None)
    ((srr0, srr1, esr, msr_at_trap),) = handler_log(m, 1)  # delivered once, at the resume
    assert (srr0, esr, srr1) == (trap, regs.ESR_PIL, msr_at_trap)
    assert m.gpr(29) == 1


def test_an_unmatched_hardware_event_resumes_without_injecting_anything(
    core: str, session: MakeSession
) -> None:
    """Unit level, with a real exit decoded by the plugin. Through a session this is hard to
    cause: while the host debugs, the kernel drops the guest's IAC/DAC writes (booke_emulate.c),
    so every IAC/DAC holds a host point, and one that matches no point needs a point removed
    while its exit is in flight - a race the session closes by reprogramming before the next
    KVM_RUN. Here the IAC is armed behind the session's back, so the session has no such point."""
    m = Machine("booke_points", core)
    s = session(m.vm, core)
    ops = s.ops[0]
    m.set_debug(
        KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP,
        [(m.sym["code_b"], abi.KVMPPC_DEBUG_BREAKPOINT)],
    )
    m.set_regs()
    assert m.run().reason == KVM_EXIT_DEBUG
    ev = ops.decode_exit(m.vcpu.kvm_run)
    assert (ev.kind, ev.pc) == (EventKind.HW_BREAK, m.sym["code_b"])
    regs_before, sregs_before = m.vcpu.get_regs(), m.vcpu.get_sregs()
    filt = ReinjectionFilter(s.points, ops.guest_verdict)
    assert type(filt.decide(ev, host_stepping=False)) is Resume
    watch = DebugEvent(EventKind.WATCH, m.sym["store_a"], m.sym["word_a"], PointKind.WATCH_WRITE)
    assert type(filt.decide(watch, host_stepping=False)) is Resume
    assert (filt.stats.resumed, filt.stats.reinjected) == (2, 0)
    assert (m.vcpu.get_regs(), m.vcpu.get_sregs()) == (regs_before, sregs_before)
