"""Host hardware points in the 264-byte big-endian ``kvm_guest_debug``, as the kernel consumes it.

``kvm_arch_vcpu_ioctl_set_guest_debug`` (booke.c) reads ``bp[0..3]`` in order and gives each
BREAKPOINT entry the next IAC and every other entry the next DAC; a third of either is -EINVAL
(docs/reference/kvm-debug-abi.md §3.1). So the plugin refuses a third hardware breakpoint or
watchpoint before anything is recorded, and each test proves the bytes twice: against a
``struct``-built image and by what the (emulated) kernel made of them - ONE_REG's IAC/DAC values and
where the guest really stops.
"""

from __future__ import annotations

import dataclasses

import pytest

from guestdbg.errors import NoFreeSlot
from guestdbg.events import StopKind
from guestdbg.kvm.constants import KVM_GUESTDBG_ENABLE
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg_booke import abi

from .conftest import MakeSession
from .harness import (
    GUEST_DEBUG_SIZE,
    HostIo,
    Machine,
    debug_sprs,
    guest_debug_bytes,
    run_to_done,
    run_to_stop,
    stop_of,
)

BP = abi.KVMPPC_DEBUG_BREAKPOINT
WW = abi.KVMPPC_DEBUG_WATCH_WRITE
WR = abi.KVMPPC_DEBUG_WATCH_READ
HW_ON = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP


def four_points(m: Machine) -> list[DebugPoint]:
    """Two breakpoints and two watchpoints, inserted interleaved (as GDB may send them)."""
    s = m.sym
    return [
        DebugPoint(PointKind.HW_BREAK, s["code_b"], 4),
        DebugPoint(PointKind.WATCH_WRITE, s["word_a"], 4),
        DebugPoint(PointKind.HW_BREAK, s["code_a"], 4),
        DebugPoint(PointKind.WATCH_READ, s["word_b"], 4),
    ]


def test_two_iacs_and_two_dacs_fill_bp_in_the_order_the_kernels_loop_consumes_them(
    core: str, session: MakeSession
) -> None:
    m = Machine("booke_points", core)
    s = session(m.vm, core, exit_handler=HostIo())
    for p in four_points(m):
        s.insert_point(p)
    sym = m.sym
    dbg = s.ops[0].encode_guest_debug(s.points.hw_points(), False, s.traps_active)
    assert len(dbg) == GUEST_DEBUG_SIZE
    # breakpoints first, each kind in insertion order: bp[0..1] -> IAC1/IAC2, bp[2..3] -> DAC1/2
    assert dbg == guest_debug_bytes(
        HW_ON,
        [(sym["code_b"], BP), (sym["code_a"], BP), (sym["word_a"], WW), (sym["word_b"], WR)],
    )
    assert dbg[8:16] == sym["code_b"].to_bytes(8, "big")  # bp[0].addr, most significant first
    assert dbg[16:20] == BP.to_bytes(4, "big")  # bp[0].type
    run_to_stop(s)  # the session hands the bytes to the kernel before the first KVM_RUN
    assert debug_sprs(m) == {
        "iac1": sym["code_b"],
        "iac2": sym["code_a"],
        "dac1": sym["word_a"],
        "dac2": sym["word_b"],
    }


def test_each_armed_point_stops_the_guest_at_its_place_with_its_reason(
    core: str, session: MakeSession
) -> None:
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    for p in four_points(m):
        s.insert_point(p)
    sym = m.sym
    first = stop_of(run_to_stop(s))
    assert first == (StopKind.HW_BREAK, sym["code_a"], None)
    assert m.gpr(20) == 0  # taken before the instruction executes
    rest = run_to_done(s, io)
    assert rest[:3] == [
        (StopKind.HW_BREAK, sym["code_b"], None),
        (StopKind.WATCH, sym["store_a"], sym["word_a"]),
        (StopKind.RWATCH, sym["load_b"], sym["word_b"]),
    ]
    assert rest[3][0] is StopKind.HALT and len(rest) == 4
    assert io.done == 3  # every instruction under a point ran exactly once


def _state(s: Session, m: Machine) -> tuple[object, ...]:
    """Everything a refused insert must leave alone: the point table, the ioctls the session
    made, the kernel's debug registers (ONE_REG and, white-box, the emulated ``dbg_reg`` with
    DBCR0) and guest memory (no trap word written)."""
    pts = s.points
    return (
        sorted(map(str, pts.all_points())),
        pts.hw_generation,
        pts.sw_generation,
        s.stats.set_guest_debug_calls,
        debug_sprs(m),
        dataclasses.asdict(m.vcpu.arch.dbg_reg),
        m.vm.read_phys(m.sym["_start"], m.sym["word_d"] + 4 - m.sym["_start"]),
    )


@pytest.mark.parametrize(
    ("kind", "where"),
    [(PointKind.HW_BREAK, "code_c"), (PointKind.WATCH_ACCESS, "word_d")],
    ids=["third_iac", "third_dac"],
)
def test_third_iac_or_dac_is_refused_and_nothing_changes(
    core: str, session: MakeSession, kind: PointKind, where: str
) -> None:
    control = Machine("booke_points", core)
    cio = HostIo()
    cs = session(control.vm, core, exit_handler=cio)
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    for p in four_points(m):
        s.insert_point(p)
        cs.insert_point(p)
    assert run_to_stop(s).reason.pc == m.sym["code_a"]  # the four are in the vCPU now
    run_to_stop(cs)
    before = _state(s, m)
    third = DebugPoint(kind, m.sym[where], 4)
    with pytest.raises(NoFreeSlot, match="slots are in use"):
        s.insert_point(third)
    assert _state(s, m) == before
    with pytest.raises(NoFreeSlot):
        s.ops[0].encode_guest_debug([*s.points.hw_points(), third], False, False)
    # the next run behaves exactly as a run that never saw the refused point
    assert run_to_done(s, io) == run_to_done(cs, cio)
    assert io.done == cio.done == 3
