"""Debug events while the host debugs, and the exits booke.c kvmppc_handle_debug builds
(docs/reference/kvm-debug-abi.md §3.4),
with the facility's timing from the e500 core reference manual (§8.4)."""

from __future__ import annotations

import pytest

from guestdbg.kvm.constants import (
    KVM_EXIT_DEBUG,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg_booke import abi, regs
from guestdbg_booke.emuhost import board

from .machine import SREGS, L, Machine

HW = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
STEP = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
BP = abi.KVMPPC_DEBUG_BREAKPOINT
WW = abi.KVMPPC_DEBUG_WATCH_WRITE
WR = abi.KVMPPC_DEBUG_WATCH_READ

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def armed(name: str, core: str, control: int, bps: list[tuple[str, int, int]]) -> Machine:
    """A machine with host debug armed and the registers written back (MSR[DE] forced)."""
    m = Machine(name, core)
    m.set_debug(control, [(m.sym[sym] + off, typ) for sym, off, typ in bps])
    m.set_regs()
    return m


def test_iac_exits_before_the_instruction_with_status_breakpoint_and_address_pc(core: str) -> None:
    m = armed("loop", core, HW, [("bp_here", 0, BP)])
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, BP, m.sym["bp_here"])
    assert m.pc == m.sym["bp_here"]
    assert m.gpr(4) == 0  # bp_here: addi r4, r4, 1 has not run


def test_resuming_at_an_armed_iac_exits_again_without_executing(core: str) -> None:
    # BookE has no "resume flag": returning to an IAC address re-takes the event
    m = armed("loop", core, HW, [("bp_here", 0, BP)])
    m.run()
    ex = m.run()
    assert (ex.address, m.gpr(4)) == (m.sym["bp_here"], 0)


def test_dac_write_exits_before_the_store_with_the_configured_address(core: str) -> None:
    # e500 manual §8.4.2: taken before the access, the instruction suppressed; the exit's address
    # is dbg_reg.dac1, not the faulting EA
    m = armed("loop", core, HW, [("other", 0, WW)])
    counter = m.sym["counter"]
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, WW, m.sym["other"])
    assert m.pc == m.sym["after_loop"]
    assert m.word(m.sym["other"]) == 0  # the stwu did not store
    assert m.gpr(3) == counter  # nor update its base register


def test_dac_read_exits_before_the_load(core: str) -> None:
    m = armed("loop", core, HW, [("counter", 0, WR)])
    ex = m.run()
    assert (ex.status, ex.address, m.pc) == (WR, m.sym["counter"], m.sym["load_insn"])
    assert m.gpr(6) == board.EPAPR_MAGIC  # r6 still holds its boot value


def test_read_write_watch_reports_write_for_a_store_and_read_for_a_load(core: str) -> None:
    # kvmppc_handle_debug: WATCH_WRITE if any DACnW, else WATCH_READ - never both
    m = armed("loop", core, HW, [("counter", 0, WR | WW)])
    first, second = m.run(), m.run()
    assert (first.status, m.pc) == (WW, m.sym["store_insn"])
    assert second.status == WW  # resuming at the store re-takes it
    m.set_debug(HW, [(m.sym["counter"], WR)])
    m.set_regs(pc=m.sym["load_insn"])
    assert m.run().status == WR


def test_dac2_reports_the_dac2_value(core: str) -> None:
    m = armed("loop", core, HW, [("done", 64, WR), ("other", 0, WW)])
    ex = m.run()
    assert (ex.status, ex.address) == (WW, m.sym["other"])
    assert m.one_reg(abi.KVM_REG_PPC_DAC2) == m.sym["other"]


def test_dac_compares_the_exact_starting_address_of_the_access(core: str) -> None:
    # stw counter (bytes counter..counter+3) does not match DAC = counter + 2: the compare is on
    # the access's effective address; the other accesses on the watched page are stepped over
    m = armed("loop", core, HW, [("counter", 2, WR | WW)])
    assert m.run_to_done() == 100
    assert m.word(m.sym["counter"]) == 99


def test_single_step_exits_after_each_instruction_with_status_0_and_the_next_pc(
    core: str,
) -> None:
    m = armed("loop", core, STEP, [])
    s = m.sym
    m.set_regs(pc=s["loop"], r3=s["counter"], r4=0, r5=100)
    trace = []
    for _ in range(6):
        ex = m.run()
        assert (ex.reason, ex.status) == (KVM_EXIT_DEBUG, 0)
        assert ex.address == m.pc
        trace.append(ex.address - s["loop"])
    assert trace == [4, 8, 12, 16, 0, 4]  # store, load, addi, cmpw, blt -> loop, store


@pytest.mark.parametrize(
    ("insn", "handler", "srr0_off", "esr", "ran"),
    [
        ("trap_insn", "prog_h", 0, regs.ESR_PTR, 1),
        ("sc_insn", "sc_h", 4, None, 0),
        ("illegal_insn", "prog_h", 0, regs.ESR_PIL, 1),
    ],
)
def test_a_step_over_an_interrupting_instruction_stops_where_the_ic_event_does(
    insn: str, handler: str, srr0_off: int, esr: int | None, ran: int
) -> None:
    # e500 manual §8.4.5: an instruction its interrupt suppresses (tw, an illegal word) completes
    # nothing, so the IC event comes once the handler's first instruction (li r20) completed;
    # sc completes and raises its interrupt with IC pending: the step ends at the handler's
    # entry. Either way the guest takes the exception exactly once.
    m = armed("traps", "e500mc", HW, [(insn, 0, BP)])
    assert m.run().address == m.sym[insn]
    handled = m.gpr(29)
    r20 = m.gpr(20)
    m.set_debug(STEP)
    ex = m.run()
    stop = m.sym[handler] + 4 * ran
    assert (ex.status, ex.address, m.pc) == (0, stop, stop)
    assert m.reg("srr0") == m.sym[insn] + srr0_off
    if esr is not None:
        assert L.field(SREGS, "u", "e", "esr").get(m.vcpu.get_sregs()) == esr
    assert m.gpr(20) == (6 if ran else r20)  # LOG's first instruction: li r20, 6
    assert m.gpr(29) == handled  # the rest of the handler has not run yet
    m.set_debug(0)
    m.run_to_done()
    log = m.vm.read_phys(m.sym["log"], 32 * 8)
    taken = [
        (log[n * 32 + 3], int.from_bytes(log[n * 32 + 4 : n * 32 + 8], "big")) for n in range(8)
    ]
    vector = 8 if handler == "sc_h" else 6
    assert taken.count((vector, m.sym[insn] + srr0_off)) == 1  # taken exactly once


def test_an_iac_hit_with_msr_de_clear_is_reported_when_a_delivery_sets_de(core: str) -> None:
    # e500 manual §8.4.1: with MSR[DE] = 0 the event only sets DBSR[IACn] and DBSR[IDE]; the
    # instruction runs. The tw's program interrupt is delivered with kvmppc_set_msr, which forces
    # MSR[DE] for the debugging host, and the delayed debug interrupt then exits - at the handler
    m = Machine("traps", core)
    m.set_debug(HW, [(m.sym["trap_insn"], BP)])
    ex = m.run()
    assert (ex.reason, ex.status) == (KVM_EXIT_DEBUG, BP)
    assert ex.address == m.pc == m.sym["prog_h"]
    assert m.reg("srr0") == m.sym["trap_insn"]
