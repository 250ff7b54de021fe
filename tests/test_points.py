"""The debug-point table: reference counts, slot limits, nothing half-applied."""

from __future__ import annotations

import copy

import pytest

from guestdbg.errors import InvalidRequest, NoFreeSlot, UnsupportedByArch
from guestdbg.points import DebugPoint, PointKind, PointTable
from guestdbg_booke.plugin import E500_CAPS
from guestdbg_x86.plugin import X86_CAPS

SW, HW = PointKind.SW_BREAK, PointKind.HW_BREAK
W, R, A = PointKind.WATCH_WRITE, PointKind.WATCH_READ, PointKind.WATCH_ACCESS


def snapshot(t: PointTable) -> object:
    return copy.deepcopy((t.sw, t.hw_breaks, t.watches, t.watch_addrs, t.hw_generation))


def test_duplicate_insert_is_reference_counted() -> None:
    t = PointTable(E500_CAPS)
    p = DebugPoint(SW, 0x1000, 4)
    assert t.insert(p) is True
    assert t.insert(p) is False
    assert t.remove(p) is None  # one reference left: stays armed
    assert (p.space, 0x1000) in t.sw
    assert t.remove(p) is not None
    assert t.sw == {}
    with pytest.raises(InvalidRequest, match="no swbreak"):
        t.remove(p)


def test_third_iac_is_refused_and_nothing_changes() -> None:
    t = PointTable(E500_CAPS)
    t.insert(DebugPoint(HW, 0x100, 4))
    t.insert(DebugPoint(HW, 0x200, 4))
    before = snapshot(t)
    with pytest.raises(NoFreeSlot, match="2 hardware breakpoint slots"):
        t.insert(DebugPoint(HW, 0x300, 4))
    assert snapshot(t) == before
    t.insert(DebugPoint(HW, 0x100, 4))  # a repeat needs no slot
    assert t.hw_breaks[("mem", 0x100)].refs == 2


def test_booke_breakpoints_and_watchpoints_have_separate_slots() -> None:
    t = PointTable(E500_CAPS)
    for addr in (0x100, 0x200):
        t.insert(DebugPoint(HW, addr, 4))
    t.insert(DebugPoint(W, 0x2000, 4))
    t.insert(DebugPoint(R, 0x2000, 4))  # same address, second DAC
    with pytest.raises(NoFreeSlot, match="watchpoint"):
        t.insert(DebugPoint(A, 0x3000, 4))
    assert [p.kind for p in t.hw_points()] == [HW, HW, W, R]


def test_fifth_x86_debug_register_is_refused() -> None:
    t = PointTable(X86_CAPS)
    t.insert(DebugPoint(HW, 0x10, 1))
    t.insert(DebugPoint(W, 0x20, 8))
    t.insert(DebugPoint(A, 0x30, 4))
    t.insert(DebugPoint(HW, 0x40, 1))
    before = snapshot(t)
    for p in (DebugPoint(HW, 0x50, 1), DebugPoint(W, 0x60, 2)):
        with pytest.raises(NoFreeSlot):
            t.insert(p)
    assert snapshot(t) == before


def test_x86_refuses_read_watch_and_bad_lengths() -> None:
    t = PointTable(X86_CAPS)
    with pytest.raises(UnsupportedByArch, match="rwatch"):
        t.insert(DebugPoint(R, 0x20, 4))
    with pytest.raises(UnsupportedByArch, match="length"):
        t.insert(DebugPoint(W, 0x20, 3))
    with pytest.raises(InvalidRequest, match="aligned"):
        t.insert(DebugPoint(W, 0x22, 4))
    assert not t.watches


def test_exit_lookups_do_not_depend_on_table_size() -> None:
    t = PointTable(E500_CAPS)
    for i in range(10_000):
        t.insert(DebugPoint(SW, 0x10_0000 + 4 * i, 4))
    assert ("mem", 0x10_0000 + 4 * 9_999) in t.sw
    assert ("mem", 0x10_0002) not in t.sw
    assert t.sw_generation == 10_000


def test_gdb_type_numbers() -> None:
    assert [k.gdb_type for k in (SW, HW, W, R, A)] == [0, 1, 2, 3, 4]
    assert PointKind.from_gdb_type(3) is R
    with pytest.raises(InvalidRequest):
        PointKind.from_gdb_type(5)


def test_watches_of_different_lengths_at_one_address_are_distinct_points() -> None:
    t = PointTable(X86_CAPS)
    t.insert(DebugPoint(W, 0x40, 8))
    t.insert(DebugPoint(W, 0x40, 4))
    assert len(t.watches) == 2
    assert t.remove(DebugPoint(W, 0x40, 8)) is not None
    assert [e.point.length for e in t.watches.values()] == [4]


def test_removing_a_breakpoint_needs_its_own_length() -> None:
    """A point's identity includes its length: ``z1,addr,2`` does not remove ``Z1,addr,4``."""
    t = PointTable(E500_CAPS)
    t.insert(DebugPoint(HW, 0x100, 4))
    t.insert(DebugPoint(SW, 0x200, 4))
    for wrong in (DebugPoint(HW, 0x100, 2), DebugPoint(SW, 0x200, 1)):
        with pytest.raises(InvalidRequest):
            t.remove(wrong)
    assert ("mem", 0x100) in t.hw_breaks and ("mem", 0x200) in t.sw


def test_has_traps_follows_every_change_of_the_trap_words() -> None:
    """``has_traps`` is asked before every KVM_RUN and kept between changes: each way a trap
    word comes or goes must be seen (a stale True leaves KVM exiting on traps nobody wants, a
    stale False lets the guest take the host's trap word as its own)."""
    from guestdbg_booke.debugops import guest_priority_caps

    t = PointTable(E500_CAPS)
    assert not t.has_traps()
    p = DebugPoint(SW, 0x1000, 4)
    t.insert(p)
    assert t.has_traps()
    t.remove(p)
    assert not t.has_traps()
    t.insert(DebugPoint(HW, 0x2000, 4))  # an IAC: no trap word
    assert not t.has_traps()
    via = PointTable(guest_priority_caps(E500_CAPS))  # no IACs left: hbreaks are trap words
    h = DebugPoint(HW, 0x3000, 4)
    via.insert(h)
    assert via.has_traps()
    t.adopt(via)
    assert t.has_traps()
    t.clear()
    assert not t.has_traps()
    via.remove(h)
    assert not via.has_traps()


def test_a_point_pickled_in_another_process_is_the_same_dict_key() -> None:
    """A point keeps its hash once worked out; one unpickled from a process with another
    string-hash salt (a migrated session's table) must hash as this process's points do."""
    import os
    import pickle
    import subprocess
    import sys

    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, sys; from guestdbg.points import DebugPoint, PointKind;"
            "sys.stdout.buffer.write(pickle.dumps(DebugPoint(PointKind.HW_BREAK, 0x40, 4)))",
        ],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout
    there = pickle.loads(made)
    here = DebugPoint(HW, 0x40, 4)
    assert there == here
    assert {here: "stats"}.get(there) == "stats"
