"""Decoding BookE debug exits, and where a watch stop leaves the guest.

``kvmppc_handle_debug`` (booke.c; docs/reference/kvm-debug-abi.md §3.4) reports IAC events as
status BREAKPOINT with address = PC, DAC events as WATCH_WRITE or WATCH_READ (write wins) with
address = the *configured* DAC value and no PC, and single steps and software breakpoints alike as
status 0. DAC events are taken before the access with the instruction suppressed (e500 core
reference manual §8.4.2), so the PC a watch stop reports is the load or store itself, read with
KVM_GET_REGS, and nothing of that instruction - not even ``stwu``'s base update - has happened yet.
"""

from __future__ import annotations

import pytest

from guestdbg.events import EventKind, StopKind
from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP
from guestdbg.points import DebugPoint, PointKind
from guestdbg_booke import abi

from .conftest import MakeSession
from .harness import HostIo, Machine, run_to_done, run_to_stop, stop_of

HW = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
BP = abi.KVMPPC_DEBUG_BREAKPOINT
WW = abi.KVMPPC_DEBUG_WATCH_WRITE
WR = abi.KVMPPC_DEBUG_WATCH_READ


def test_kernel_exits_decode_to_breakpoint_watch_and_step_events(
    core: str, session: MakeSession
) -> None:
    """Real exits of the emulated kernel, driven with raw KVM ioctls, through ``decode_exit``."""
    m = Machine("booke_points", core)
    ops = session(m.vm, core).ops[0]  # not resumed: the test thread drives the vCPU
    sym = m.sym

    def exit_with(control: int, bps: list[tuple[int, int]]) -> tuple[object, ...]:
        m.set_debug(control, bps)
        m.set_regs()  # the kernel forces MSR[DE] at the next register write (§3.2)
        ex = m.run()
        assert ex.reason == KVM_EXIT_DEBUG
        ev = ops.decode_exit(m.vcpu.kvm_run)
        return ev.kind, ev.pc, ev.address, ev.access, ev.arch

    access = WW | WR
    assert exit_with(HW, [(sym["code_b"], BP)]) == (
        EventKind.HW_BREAK, sym["code_b"], sym["code_b"], None, BP
    )  # fmt: skip
    # DAC2 carries the watch: the address is DAC2's configured value, the PC comes from the regs
    assert exit_with(HW, [(sym["word_b"], WR), (sym["word_a"], access)]) == (
        EventKind.WATCH, sym["store_a"], sym["word_a"], PointKind.WATCH_WRITE, WW
    )  # fmt: skip
    m.set_regs(pc=sym["load_a"])
    assert exit_with(HW, [(sym["word_b"], WW), (sym["word_a"], access)]) == (
        EventKind.WATCH, sym["load_a"], sym["word_a"], PointKind.WATCH_READ, WR
    )  # fmt: skip
    assert exit_with(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, []) == (
        EventKind.STEP_OR_SW_TRAP, sym["load_a"] + 4, sym["load_a"] + 4, None, 0
    )  # fmt: skip


def test_a_step_onto_a_host_breakpoint_reports_a_step(core: str, session: MakeSession) -> None:
    """Status 0 is the host's step first (the vCPU was stepping), the breakpoint table second."""
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    for label in ("code_a", "code_b"):
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym[label], 4))
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, m.sym["code_a"], None)
    assert stop_of(run_to_stop(s, step=True)) == (StopKind.STEP, m.sym["code_b"], None)
    assert m.gpr(20) == 1
    assert [kind for kind, _, _ in run_to_done(s, io)] == [StopKind.HALT]  # code_b: stepped over
    assert io.done == 3


@pytest.mark.parametrize(
    ("kind", "stops"),
    [
        (PointKind.WATCH_WRITE, [(StopKind.WATCH, "store_b")]),
        (PointKind.WATCH_READ, [(StopKind.RWATCH, "load_b")]),
        (PointKind.WATCH_ACCESS, [(StopKind.AWATCH, "load_b"), (StopKind.AWATCH, "store_b")]),
    ],
    ids=["write", "read", "access"],
)
def test_watch_stops_report_the_accessing_instruction_before_it_accesses(
    core: str, session: MakeSession, kind: PointKind, stops: list[tuple[StopKind, str]]
) -> None:
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    watched = m.sym["word_b"]
    s.insert_point(DebugPoint(kind, watched, 4))
    for stop, label in stops:
        assert stop_of(run_to_stop(s)) == (stop, m.sym[label], watched)
        if label == "load_b":
            assert m.gpr(5) == 0  # the load has not happened
        else:
            assert m.word(watched) == 0x0B0B0B0B  # nor the store
    assert [k for k, _, _ in run_to_done(s, io)] == [StopKind.HALT]
    assert (m.gpr(5), m.word(watched)) == (0x0B0B0B0B, 0x11)  # each access ran exactly once


def test_each_watch_stop_names_the_watchpoint_whose_dac_the_kernel_reported(
    core: str, session: MakeSession
) -> None:
    """awatch on word_a takes DAC1 and watch on word_d DAC2; the exit's address is the DAC's
    configured value, which is the watchpoint's own address. The ``stwu`` stop comes before its
    store and before its base-register update."""
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    sym = m.sym
    s.insert_point(DebugPoint(PointKind.WATCH_ACCESS, sym["word_a"], 4))
    s.insert_point(DebugPoint(PointKind.WATCH_WRITE, sym["word_d"], 4))
    assert stop_of(run_to_stop(s)) == (StopKind.AWATCH, sym["store_a"], sym["word_a"])
    assert stop_of(run_to_stop(s)) == (StopKind.AWATCH, sym["load_a"], sym["word_a"])
    assert stop_of(run_to_stop(s)) == (StopKind.WATCH, sym["stwu_d"], sym["word_d"])
    assert (m.gpr(10), m.word(sym["word_d"])) == (sym["word_c"], 0)
    assert [k for k, _, _ in run_to_done(s, io)] == [StopKind.HALT]
    assert (m.gpr(10), m.word(sym["word_d"]), m.gpr(6)) == (sym["word_d"], 0x11, 0x11)
