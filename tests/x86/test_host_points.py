"""Host breakpoints and watchpoints in DR0-3 through a session, on both x86 hosts.

Refusals follow QEMU's ``kvm_arch_insert_hw_breakpoint`` (docs/reference/kvm-debug-abi.md
§5.3): a read-only watchpoint cannot be expressed in DR7 and a fifth point has no slot; either is
refused with a clear error and leaves the point table, the vCPU's debug state and the guest exactly
as they were. The guest's own debug registers are never the host's to keep.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guestdbg.errors import InvalidRequest, NoFreeSlot, UnsupportedByArch
from guestdbg.events import StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session

from .machines import Machine, refusal
from .sessions import halted, run_to_stop

MakeMachine = Callable[[str], Machine]
DR6_ACTIVE_LOW = 0xFFFF0FF0


def _snapshot(s: Session) -> tuple[object, ...]:
    pts = s.points
    return (
        sorted(map(str, pts.all_points())),
        pts.hw_generation,
        pts.sw_generation,
        s.stats.set_guest_debug_calls,
    )


def _refused_here(s: Session, m: Machine, point: DebugPoint) -> bool:
    """Insert ``point``; on a host that never fires data breakpoints (kvm_pvm), check that it is
    refused with the reason, before anything is armed, and say so."""
    why = refusal(m, point.kind)
    if why is None:
        s.insert_point(point)
        return False
    before = _snapshot(s)
    with pytest.raises(UnsupportedByArch, match="never fires data breakpoints"):
        s.insert_point(point)
    assert _snapshot(s) == before
    return True


def test_read_only_watchpoint_is_refused_and_nothing_changes(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    m.start_at("watch_start")
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("watch_after_store")))
        before = _snapshot(s)
        rwatch = DebugPoint(PointKind.WATCH_READ, m.sym("watched"), 4)
        with pytest.raises(UnsupportedByArch, match="rwatch"):
            s.insert_point(rwatch)
        assert _snapshot(s) == before
        with pytest.raises(UnsupportedByArch, match="read-only"):
            s.ops[0].encode_guest_debug([rwatch], False, False)
        ev = run_to_stop(s)  # the vCPU still runs with exactly the earlier point
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym("watch_after_store"))
    finally:
        s.close()


def test_fifth_hardware_point_is_refused_and_nothing_changes(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    m.start_at("watch_start")
    s = Session(m.vm, "x86")
    four = [
        DebugPoint(PointKind.HW_BREAK, m.sym("watch_after_load")),
        DebugPoint(PointKind.HW_BREAK, m.sym("watch_after_store")),
        DebugPoint(PointKind.WATCH_WRITE, m.sym("db_count"), 8),
        DebugPoint(PointKind.WATCH_ACCESS, m.sym("bp_count"), 8),
    ]
    if refusal(m, PointKind.WATCH_WRITE):  # this host fills the pool with breakpoints only
        four[2:] = [DebugPoint(PointKind.HW_BREAK, m.sym(n)) for n in ("bp_done", "tf_done")]
    try:
        for p in four:
            s.insert_point(p)
        before = _snapshot(s)
        fifth = DebugPoint(PointKind.HW_BREAK, m.sym("watch_done"))
        with pytest.raises(NoFreeSlot):
            s.insert_point(fifth)
        assert _snapshot(s) == before
        with pytest.raises(NoFreeSlot, match="DR0-DR3"):
            s.ops[0].encode_guest_debug([*four, fifth], False, False)
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym("watch_after_store"))
    finally:
        s.close()


@pytest.mark.parametrize(
    ("length", "offset", "error"),
    [(3, 0, UnsupportedByArch), (4, 2, InvalidRequest), (16, 0, UnsupportedByArch)],
)
def test_watchpoint_length_and_alignment_are_checked_before_anything_is_armed(
    make_machine: MakeMachine, length: int, offset: int, error: type[Exception]
) -> None:
    m = make_machine("reinject")
    s = Session(m.vm, "x86")
    if refusal(m, PointKind.WATCH_WRITE):
        error = UnsupportedByArch  # no watchpoint at all on this host, whatever its shape
    try:
        before = _snapshot(s)
        with pytest.raises(error):
            s.insert_point(DebugPoint(PointKind.WATCH_WRITE, m.sym("watched") + offset, length))
        assert _snapshot(s) == before
    finally:
        s.close()


def test_two_hardware_breakpoints_stop_in_turn_stepping_over_the_first(
    make_machine: MakeMachine,
) -> None:
    """Resuming from a hardware breakpoint steps over it with that slot masked (kvm_pvm
    ignores RFLAGS.RF, so the vCPU would otherwise stop at it again)."""
    m = make_machine("reinject")
    m.start_at("watch_start")
    s = Session(m.vm, "x86")
    try:
        for label in ("watch_after_store", "watch_after_load"):
            s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym(label)))
        for label in ("watch_after_store", "watch_after_load"):
            ev = run_to_stop(s)
            assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym(label))
        assert m.reg("rax") & 0xFFFFFFFF == 0x1234  # the load between them ran once
    finally:
        s.close()


def test_a_hardware_breakpoint_is_removed_whatever_length_gdb_names(
    make_machine: MakeMachine,
) -> None:
    """GDB's Z1/z1 kind is a size hint and need not repeat itself: an execute breakpoint covers
    the instruction at its address, so any length names the same point (issue 17: "no hwbreak
    mem:0x10010/1 to remove")."""
    m = make_machine("reinject")
    s = Session(m.vm, "x86")
    try:
        addr = m.sym("watch_after_load")
        s.insert_point(DebugPoint(PointKind.HW_BREAK, addr, 4))
        s.insert_point(DebugPoint(PointKind.HW_BREAK, addr, 1))
        assert [str(p) for p in s.points.all_points()] == [f"hwbreak mem:{addr:#x}/1"]
        s.remove_point(DebugPoint(PointKind.HW_BREAK, addr, 1))
        s.remove_point(DebugPoint(PointKind.HW_BREAK, addr, 8))
        assert list(s.points.all_points()) == []
    finally:
        s.close()


@pytest.mark.parametrize(
    ("kind", "stop", "after"),
    [
        (PointKind.WATCH_WRITE, StopKind.WATCH, "watch_after_store"),
        (PointKind.WATCH_ACCESS, StopKind.AWATCH, "watch_after_store"),
    ],
)
def test_watchpoint_stops_after_the_access_with_the_watched_address(
    make_machine: MakeMachine, kind: PointKind, stop: StopKind, after: str
) -> None:
    """x86 data breakpoints are traps: the store has happened and RIP is past it."""
    m = make_machine("reinject")
    m.start_at("watch_start")
    s = Session(m.vm, "x86")
    try:
        if _refused_here(s, m, DebugPoint(kind, m.sym("watched"), 4)):
            return
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc, ev.reason.address) == (
            stop,
            m.sym(after),
            m.sym("watched"),
        )
        assert int.from_bytes(m.vm.read_phys(m.sym("watched"), 4), "little") == 0x1234
    finally:
        s.close()


def test_access_watchpoint_also_stops_after_a_load(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    m.start_at("watch_after_store")
    s = Session(m.vm, "x86")
    try:
        if _refused_here(s, m, DebugPoint(PointKind.WATCH_ACCESS, m.sym("watched"), 4)):
            return
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.AWATCH, m.sym("watch_after_load"))
    finally:
        s.close()


def test_the_guests_own_debug_registers_outlive_the_session(make_machine: MakeMachine) -> None:
    """The guest armed DR0 itself (here through KVM_SET_DEBUGREGS, as a restored guest would
    have it); attach records it, the host's points never replace it in the guest's view, and
    after detach the guest's breakpoint fires into the guest's own handler."""
    m = make_machine("reinject")
    m.start_at("watch_start")
    own = {"dr0": m.sym("watch_after_load"), "dr7": 0x402}
    s = Session(m.vm, "x86", attach=False)
    try:
        s.ops[0].dregs.write(own)  # type: ignore[attr-defined]
        s.attach()
        assert {k: s.saved_guest[0][k] for k in own} == own
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("watch_after_store")))
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym("watch_after_store"))
        seen = s.ops[0].dregs.read()  # type: ignore[attr-defined]
        assert {k: seen[k] for k in own} == own
        s.detach()  # the guest runs on, its own DR0 now in effect again
        ev = s.wait_stop(10)
        assert ev is not None and halted(ev)
        assert m.u64("db_count") == 1
        assert m.u64("db_dr6") == DR6_ACTIVE_LOW | 0x1  # B0: the guest's own slot
        assert m.u64("db_frame_rip") == m.sym("watch_after_load")  # a fault, before the nop
    finally:
        s.close()
