"""Guest code rewritten under a breakpoint (issue 16), on the emulated e500mc host, which like
Linux BookE KVM has no read-only memory slots (docs/reference/kvm-debug-abi.md §11): found and
re-armed at each stop, reported; kept in a hardware compare where the user opts in; re-armed
after the VMM's own writes. The guest is a loader (tests/guests/ppc/booke_loader.S) that copies
`template` over `dest_fn` and calls it, three rounds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emuhost.machine import read_exit

from guestdbg.errors import InvalidRequest, NoFreeSlot
from guestdbg.events import ResumeAction, StopEvent, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session, migration
from guestdbg_booke.emuhost import HOSTIO_DONE, EmulatedBookeVm

from .support import guest, symbols

SYM = symbols("booke_loader")
DEST, COPIED, TEMPLATE = SYM["dest_fn"], SYM["copied"], SYM["template"]
RESULT = (3 << 16) | (7 + 10 + 13)
"""What the guest reports when every round ran the copied code."""


class Done:
    """The device model: the guest's done store stops the VM and its word is kept."""

    def __init__(self) -> None:
        self.value: int | None = None

    def __call__(self, index: int, reason: int, run: memoryview) -> bool:
        if reason != KVM_EXIT_MMIO:
            return False
        ex = read_exit(run)
        if ex.mmio_addr == HOSTIO_DONE:
            self.value = ex.mmio_word
            return False
        return True


def sw(addr: int) -> DebugPoint:
    return DebugPoint(PointKind.SW_BREAK, addr, 4)


def hw(addr: int) -> DebugPoint:
    return DebugPoint(PointKind.HW_BREAK, addr, 4)


def loader(sessions: list[Session], **kw: Any) -> tuple[EmulatedBookeVm, Session, Done]:
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(guest("booke_loader"))
    done = Done()
    s = Session(vm, "e500mc", exit_handler=done, **kw)
    sessions.append(s)
    return vm, s, done


def run(s: Session) -> StopEvent:
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None, "the guest hung"
    return ev


def run_to_done(s: Session) -> list[StopEvent]:
    stops = [run(s)]
    while stops[-1].reason.kind is not StopKind.HALT:
        assert len(stops) < 20, stops
        stops.append(run(s))
    return stops


def where(stops: list[StopEvent]) -> list[tuple[str, int]]:
    return [(ev.reason.kind.value, ev.reason.pc) for ev in stops]


def template(vm: EmulatedBookeVm) -> bytes:
    return vm.read_phys(TEMPLATE, 4)


def test_undebugged_the_loader_reports_every_round_of_copied_code(
    sessions: list[Session],
) -> None:
    vm, s, done = loader(sessions)
    assert [e.reason.kind for e in run_to_done(s)] == [StopKind.HALT]
    assert done.value == RESULT == int.from_bytes(vm.read_phys(SYM["result"], 4), "big")


def test_a_rewrite_found_at_a_stop_is_rearmed_over_the_new_word_and_reported(
    sessions: list[Session],
) -> None:
    vm, s, done = loader(sessions)
    trap = s.trap_writer.insn
    before = vm.read_phys(DEST, 4)
    s.insert_point(sw(DEST))
    s.insert_point(sw(COPIED))
    ev = run(s)
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, COPIED)
    (notice,) = ev.notices
    assert f"breakpoint at {DEST:#x}" in notice and "re-armed over the new instruction" in notice
    assert f"now {template(vm).hex()}, was {before.hex()}" in notice
    assert f"monitor hwbreak {DEST:#x}" in notice
    assert vm.read_phys(DEST, 4) == trap  # armed again
    assert s.read_memory(0, DEST, 4) == template(vm)  # the debugger sees the new word
    assert s.point_stats()[sw(DEST)].rewritten == 1
    assert f"swbreak {DEST:#x} hits=0 rewritten=1" in s.monitor("points")
    # the re-armed trap stops the call; each later round copies the same word again over it:
    # memory == the saved original, != the trap, so still a rewrite, found at `copied`
    stops = [ev, *run_to_done(s)]
    assert where(stops) == [("swbreak", COPIED), ("swbreak", DEST)] * 3 + [
        ("halt", stops[-1].reason.pc)
    ]
    assert [len(e.notices) for e in stops] == [1, 0] * 3 + [0]
    assert done.value == RESULT  # each step over the trap ran the copied instruction
    assert s.point_stats()[sw(DEST)].rewritten == 3
    assert s.remove_point(sw(DEST)) is None
    assert vm.read_phys(DEST, 4) == template(vm)


def test_a_rewrite_between_two_stops_loses_the_hits_and_the_next_stop_says_so(
    sessions: list[Session],
) -> None:
    vm, s, done = loader(sessions)
    s.insert_point(sw(DEST))
    stops = run_to_done(s)
    assert [e.reason.kind for e in stops] == [StopKind.HALT]  # all three calls ran unseen
    assert done.value == RESULT
    (notice,) = stops[0].notices
    assert "the guest rewrote the code under the breakpoint" in notice
    assert "loses the hit" in notice
    assert vm.read_phys(DEST, 4) == s.trap_writer.insn


def test_a_store_of_the_trap_bytes_themselves_is_nothing_to_report(
    sessions: list[Session],
) -> None:
    vm, s, _ = loader(sessions)
    s.insert_point(sw(DEST))
    vm.write_phys(DEST, s.trap_writer.insn)
    assert s.guest_memory_written(DEST, 4) == []
    s.insert_point(sw(COPIED))
    vm.write_phys(TEMPLATE, s.trap_writer.insn)  # the loader copies the trap word itself
    ev = run(s)
    assert ev.reason.pc == COPIED and ev.notices == ()
    assert s.point_stats()[sw(DEST)].rewritten == 0


def test_an_hbreak_served_by_the_same_trap_word_is_one_check_and_both_count(
    sessions: list[Session],
) -> None:
    """Under the guest-priority policy BookE hardware breakpoints are trap words too."""
    vm, s, _ = loader(sessions, policy="guest-priority")
    assert s.caps.hw_break_via_sw
    s.insert_point(sw(DEST))
    s.insert_point(hw(DEST))
    s.insert_point(sw(COPIED))
    ev = run(s)
    assert ev.reason.pc == COPIED and len(ev.notices) == 1
    assert "no hardware slot can keep it here" in ev.notices[0]
    stats = s.point_stats()
    assert stats[sw(DEST)].rewritten == stats[hw(DEST)].rewritten == 1
    assert s.points.sw[("mem", DEST)].original == template(vm)
    trap = s.points.hw_breaks[("mem", DEST)].trap
    assert trap is not None and trap.original == template(vm)
    assert s.monitor("hwbreak").startswith("no address")
    with pytest.raises(Exception, match="trap words too"):
        s.monitor(f"hwbreak {DEST:#x}")


def test_hwbreak_opt_in_serves_a_software_breakpoint_by_a_compare_and_keeps_every_hit(
    sessions: list[Session],
) -> None:
    vm, s, done = loader(sessions)
    pristine = vm.read_phys(DEST, 12)
    assert "served by a hardware instruction compare" in s.monitor(f"hwbreak {DEST:#x}")
    assert s.monitor("hwbreak list") == f"hwbreak {DEST:#x}\n"
    s.insert_point(sw(DEST))  # GDB's Z0
    assert vm.read_phys(DEST, 12) == pristine  # no trap word written
    assert ("mem", DEST) in s.points.hw_breaks and not s.points.sw
    stops = run_to_done(s)
    assert where(stops)[:3] == [("hwbreak", DEST)] * 3
    assert len(stops) == 4 and all(e.notices == () for e in stops)
    assert done.value == RESULT
    assert s.remove_point(sw(DEST)) is None  # GDB's z0 removes the compare
    assert not s.points.hw_breaks
    assert "trap words again" in s.monitor(f"hwbreak off {DEST:#x}")
    s.insert_point(sw(DEST))
    assert vm.read_phys(DEST, 4) == s.trap_writer.insn


def test_hwbreak_opt_in_moves_an_inserted_trap_and_is_refused_when_no_slot_is_free(
    sessions: list[Session],
) -> None:
    vm, s, _ = loader(sessions)
    pristine = vm.read_phys(DEST, 4)
    s.insert_point(sw(DEST))
    s.monitor(f"hwbreak {DEST:#x}")  # GDB's always-inserted: the trap goes, the point stays
    assert vm.read_phys(DEST, 4) == pristine and ("mem", DEST) in s.points.hw_breaks
    with pytest.raises(InvalidRequest, match="inserted now"):
        s.monitor(f"hwbreak off {DEST:#x}")
    s.insert_point(hw(SYM["done"]))  # e500mc has two IACs: both are now taken
    with pytest.raises(NoFreeSlot):
        s.monitor(f"hwbreak {COPIED:#x}")
    assert s.state.hw_served == {("mem", DEST)}
    s.remove_point(sw(DEST))
    assert not s.points.hw_breaks.get(("mem", DEST))
    s.detach()
    assert s.state.hw_served == set()  # detach forgets the opt-ins


def test_the_hw_policy_moves_a_rewritten_breakpoint_to_a_compare_at_once(
    sessions: list[Session],
) -> None:
    vm, s, done = loader(sessions)
    assert s.monitor("rewrites hw") == "rewrites hw\n"
    s.insert_point(sw(DEST))
    s.insert_point(sw(COPIED))
    ev = run(s)
    (notice,) = ev.notices
    assert "moved to a hardware instruction compare" in notice
    assert vm.read_phys(DEST, 4) == template(vm)  # the guest's word, no trap
    assert ("mem", DEST) in s.points.hw_breaks and ("mem", DEST) not in s.points.sw
    stops = [ev, *run_to_done(s)]
    assert where(stops)[:6] == [("swbreak", COPIED), ("hwbreak", DEST)] * 3
    assert done.value == RESULT
    assert s.remove_point(sw(DEST)) is None  # GDB removes what it inserted as Z0


def test_the_hw_policy_without_a_free_slot_leaves_a_trap_word_and_says_why(
    sessions: list[Session],
) -> None:
    vm, s, _ = loader(sessions)
    s.monitor("rewrites hw")
    s.insert_point(hw(SYM["done"]))
    s.insert_point(hw(TEMPLATE))
    s.insert_point(sw(DEST))
    s.insert_point(sw(COPIED))
    (notice,) = run(s).notices
    assert "re-armed over the new instruction; it stays a trap word" in notice
    assert "slots" in notice
    assert vm.read_phys(DEST, 4) == s.trap_writer.insn


def test_the_vmms_own_write_over_a_trap_is_rearmed_and_the_next_stop_says_so(
    sessions: list[Session],
) -> None:
    vm, s, _ = loader(sessions)
    s.insert_point(sw(DEST))
    code = vm.read_phys(TEMPLATE, 12)
    vm.write_phys(DEST, code)  # as a VMM loading an image would
    assert s.guest_memory_written(DEST + 12, 64) == []  # outside: nothing
    (notice,) = s.guest_memory_written(DEST - 8, 16)
    assert notice.startswith(f"the VMM rewrote the code under the breakpoint at {DEST:#x}")
    assert vm.read_phys(DEST, 4) == s.trap_writer.insn
    assert s.read_memory(0, DEST, 12) == code
    with pytest.raises(InvalidRequest):
        s.guest_memory_written(-1, 4)
    ev = run(s)
    assert notice in ev.notices


def test_a_word_replaced_while_a_trap_was_out_for_a_step_is_kept_and_reported(
    sessions: list[Session],
) -> None:
    vm, s, _ = loader(sessions)
    s.insert_point(sw(DEST))
    entry = s.points.sw[("mem", DEST)]
    old = entry.original
    assert s.trap_writer.suspend(entry)  # what a step over it does
    vm.write_phys(DEST, template(vm))  # replaced during that step
    s.trap_writer.rearm(entry)
    assert entry.original == template(vm) and vm.read_phys(DEST, 4) == s.trap_writer.insn
    s.insert_point(sw(COPIED))
    first, second = run(s).notices  # then the loader's copy over it again
    assert "while a vCPU stepped over it" in first and f"was {old.hex()}" in first
    assert "the guest rewrote" in second


def test_opt_ins_and_the_policy_travel_in_a_version_2_document(sessions: list[Session]) -> None:
    vm, s, _ = loader(sessions)
    plain = s.save_state()
    assert plain["version"] == 1 and "hw_served" not in plain
    s.monitor(f"hwbreak {DEST:#x}")
    s.monitor("rewrites hw")
    s.insert_point(sw(DEST))
    doc = json.loads(json.dumps(s.save_state()))
    assert doc["version"] == 2
    assert doc["hw_served"] == [{"space": "mem", "addr": DEST}]
    assert migration.read(plain).hw_served == []
    s.close()
    new = EmulatedBookeVm.from_snapshot(vm.snapshot())
    s2 = Session.restore(new, doc, exit_handler=Done())
    sessions.append(s2)
    assert s2.state.hw_served == {("mem", DEST)} and s2.state.rewrite_policy == "hw"
    assert s2.remove_point(sw(DEST)) is None  # the migrated Z0 is still GDB's to remove
    bad = dict(doc, hw_served=[{"space": "mem", "addr": -4}])
    with pytest.raises(migration.MigrationError):
        migration.apply(migration.read(bad), s2.state, s2.ports, s2.arch, new)
