"""The write guard (guestdbg.session.write_guard) through a session on the emulated x86-64 host,
which has read-only memory slots as x86 KVM does: the slot layout follows the trap words, the
guest's stores to a trap page are applied with the trap kept armed, and every slot comes back as
the VMM had it. Guest: ``tests/guests/x86/loader.S``."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import pytest

from guestdbg.capabilities import DebugCapabilities
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO, KVM_MEM_READONLY
from guestdbg.points import DEFAULT_SPACE, DebugPoint, PointKind, PointTable
from guestdbg.session.session import Session
from guestdbg.session.traps import TrapWriter, apply_guest_store
from guestdbg.session.write_guard import PAGE, TrapPageGuard, _split
from guestdbg.vcpu import SlotInfo
from guestdbg_x86 import boot

from . import machines
from .sessions import STOP_TIMEOUT, halted, run_to_stop

INT3 = b"\xcc"


@pytest.fixture
def loader(x86_guests: Callable[[str], pathlib.Path]) -> pathlib.Path:
    return x86_guests("loader")


def _read_only(m: machines.Machine) -> list[tuple[int, int]]:
    return [(s.gpa, s.size) for s in m.vm.memory_slots() if s.flags & KVM_MEM_READONLY]  # type: ignore[attr-defined]


def sw(addr: int) -> DebugPoint:
    return DebugPoint(PointKind.SW_BREAK, addr, 1)


def test_split_keeps_runs_of_protected_pages_together() -> None:
    orig = SlotInfo(3, 0, 0x0, 16 * PAGE, 0x7F0000000000)
    assert _split(orig, {2 * PAGE, 3 * PAGE, 9 * PAGE}) == [
        (0, 2 * PAGE, False),
        (2 * PAGE, 2 * PAGE, True),
        (4 * PAGE, 5 * PAGE, False),
        (9 * PAGE, PAGE, True),
        (10 * PAGE, 6 * PAGE, False),
    ]
    assert _split(orig, {0, 15 * PAGE}) == [(0, PAGE, True), (PAGE, 14 * PAGE, False),
                                            (15 * PAGE, PAGE, True)]  # fmt: skip


def test_the_slot_layout_follows_the_trap_words_and_comes_back_at_detach(
    loader: pathlib.Path,
) -> None:
    m = machines.emulated(loader)
    m.start_at("start")
    before = m.vm.memory_slots()  # type: ignore[attr-defined]
    s = Session(m.vm, "x86")
    try:
        dest, near = m.sym("dest_fn"), m.sym("near_code")
        s.insert_point(sw(dest))
        s.insert_point(sw(dest + 1))  # a second trap word in the same page: one slot
        s.insert_point(sw(near))
        assert _read_only(m) == []  # reshaped when the VM runs, not at each insertion
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, dest)
        assert _read_only(m) == [(dest, 2 * PAGE)]  # dest_fn's and near_code's pages, adjacent
        s.remove_point(sw(near))
        s.remove_point(sw(dest + 1))
        ev = run_to_stop(s)  # rounds 2: the copy exits, is applied, the trap fires again
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, dest)
        assert _read_only(m) == [(dest, PAGE)]
        assert s.read_memory(0, dest, 4) == m.vm.read_phys(m.sym("template"), 4)
        assert m.vm.read_phys(dest, 1) == INT3
        s.detach()
        assert m.vm.memory_slots() == before  # type: ignore[attr-defined]
        assert m.vm.read_phys(dest, 4) == m.vm.read_phys(m.sym("template"), 4)
    finally:
        s.close()


def test_guest_stores_to_a_trap_page_are_applied_with_the_trap_kept(loader: pathlib.Path) -> None:
    m = machines.emulated(loader)
    m.start_at("start")
    s = Session(m.vm, "x86")
    try:
        dest = m.sym("dest_fn")
        s.insert_point(sw(dest))
        s.insert_point(sw(m.sym("done")))
        stops = [run_to_stop(s) for _ in range(4)]
        assert [e.reason.pc for e in stops] == [dest, dest, dest, m.sym("done")]
        assert s.state.guard is not None and s.state.guard.stores >= 3  # three copies, at least
        entry = s.points.trap_at(DEFAULT_SPACE, dest)
        assert entry is not None
        assert entry.original == m.vm.read_phys(m.sym("template"), 1)
        assert m.u64("result") == 303
    finally:
        s.close()


def test_a_store_next_to_a_trap_word_lands_and_mmio_elsewhere_is_the_vmms(
    loader: pathlib.Path,
) -> None:
    """near_data shares a page with the breakpoint on near_code: every store exits and lands;
    the guest ends with the last value it stored, and no exit went to the device model."""
    m = machines.emulated(loader)
    m.start_at("same_page_loop")
    m.set_regs(rcx=50)
    seen: list[int] = []

    def device(index: int, reason: int, run: memoryview) -> bool:
        seen.append(reason)
        return False

    s = Session(m.vm, "x86", exit_handler=device)
    try:
        s.insert_point(sw(m.sym("near_code")))
        ev = run_to_stop(s)
        assert halted(ev) and ev.reason.pc in (m.sym("same_page_done"), m.sym("same_page_done") + 1)
        assert m.u64("near_data") == 1
        assert s.state.guard is not None and s.state.guard.stores == 50
        assert len(seen) == 1  # the hlt only
        assert s.read_memory(0, m.sym("near_code"), 1) == b"\x90"
    finally:
        s.close()


def test_write_tracking_on_both_hosts_applies_the_loaders_stores_and_keeps_the_trap(
    make_machine: Callable[[str], machines.Machine],
) -> None:
    """The write tracking itself, on this machine's /dev/kvm and on the emulated host through the
    same calls a session's port makes (this kvm cannot deliver int3 at CPL0, so a session there
    refuses software breakpoints; the trap word is written here as TrapWriter writes it). The
    loader's first copy over dest_fn exits as KVM_EXIT_MMIO store by store; each is applied
    with the trap word kept and the guest's byte as its saved original."""
    m = make_machine("loader")
    m.start_at("start")
    guard = TrapPageGuard.for_vm(m.vm)
    assert guard is not None  # both hosts have KVM_CAP_READONLY_MEM and a slot table
    dest, template = m.sym("dest_fn"), m.sym("template")
    new = m.vm.read_phys(template, 4)
    table = PointTable(DebugCapabilities(hw_breakpoints=4, hw_watchpoints=4))
    point = sw(dest)
    table.insert(point)
    entry = table.trap_at(DEFAULT_SPACE, dest)
    assert entry is not None
    TrapWriter(m.vm, INT3).insert(m.vcpu, entry)
    guard.want([dest])
    guard.apply()
    assert _read_only(m) == [(dest, PAGE)]
    stores = 0
    while True:
        reason = m.run()
        if reason != KVM_EXIT_MMIO:
            break
        store = guard.store_at(m.vcpu.kvm_run)
        assert store is not None, "an MMIO exit outside the trap page"
        apply_guest_store(table, m.vm, *store, INT3)
        stores += 1
    assert stores >= 1
    assert m.vm.read_phys(dest, 1) == INT3  # still armed
    assert entry.original == new[:1]  # the guest's new first byte is the saved original
    assert m.vm.read_phys(dest + 1, 3) == new[1:4]  # the rest landed as the guest wrote it
    guard.restore()
    assert _read_only(m) == []


def test_two_vcpus_storing_to_one_trap_page_at_once_lose_nothing(loader: pathlib.Path) -> None:
    """Both vCPUs store into near_data's page (each its own word) while a trap word sits on
    near_code: every store exits, is applied once, and the trap stays armed."""
    m = machines.emulated(loader, smp=2)
    near_data, stores = m.sym("near_data"), 300
    for i, v in enumerate(m.vm.vcpus):
        boot.start_at(v, machines.LAYOUT, m.sym("rdi_loop"), m.sym("stack_top") - 512 * i)
        regs = v.get_regs()
        machines.LAYOUT.field("struct kvm_regs", "rcx").put(regs, stores)
        machines.LAYOUT.field("struct kvm_regs", "rdi").put(regs, near_data + 8 * (i + 1))
        v.set_regs(bytes(regs))
    s = Session(m.vm, "x86", exit_handler=lambda i, r, run: False)
    try:
        s.insert_point(sw(m.sym("near_code")))
        s.resume({0: ResumeAction(), 1: ResumeAction()})
        halts = 0
        while halts < 2:  # each vCPU ends at its hlt; the first HALT stops the VM
            ev = s.wait_stop(STOP_TIMEOUT)
            assert ev is not None and halted(ev), ev
            halts += 1
            pcs = [s.ports[i].ops.pc() for i in range(2)]
            done = [pc in (m.sym("rdi_done"), m.sym("rdi_done") + 1) for pc in pcs]
            if all(done):
                break
            s.resume({i: ResumeAction() for i in range(2) if not done[i]})
        assert s.state.guard is not None and s.state.guard.stores == 2 * stores
        assert m.vm.read_phys(near_data + 8, 16) == (1).to_bytes(8, "little") * 2
        assert m.vm.read_phys(m.sym("near_code"), 1) == INT3
    finally:
        s.close()


def test_an_mmio_exit_outside_every_trap_page_is_the_device_models(loader: pathlib.Path) -> None:
    """The VMM's own read-only slot (a ROM) beside a write-protected trap page: the guest's
    store to the ROM leaves KVM_RUN as KVM_EXIT_MMIO and goes to the VMM's exit handler, and
    the guard never splits or restores that slot."""
    m = machines.emulated(loader)
    device_page = 0x300000
    ram = next(s for s in m.vm.memory_slots() if s.gpa <= device_page < s.end)  # type: ignore[attr-defined]
    m.vm.set_memory_slot(dataclasses.replace(ram, size=0))  # type: ignore[attr-defined]
    m.vm.set_memory_slot(dataclasses.replace(ram, size=device_page - ram.gpa))  # type: ignore[attr-defined]
    rom = SlotInfo(ram.slot + 1, KVM_MEM_READONLY, device_page, PAGE,
                   ram.userspace_addr + device_page - ram.gpa)  # fmt: skip
    m.vm.set_memory_slot(rom)  # type: ignore[attr-defined]
    upper = device_page + PAGE
    m.vm.set_memory_slot(  # type: ignore[attr-defined]
        SlotInfo(ram.slot + 2, ram.flags, upper, ram.end - upper,
                 ram.userspace_addr + upper - ram.gpa)
    )  # fmt: skip
    layout = m.vm.memory_slots()  # type: ignore[attr-defined]
    m.start_at("rdi_loop")
    m.set_regs(rcx=1, rdi=device_page + 0x10)
    seen: list[tuple[int, int, int]] = []
    mmio = machines.LAYOUT.field

    def device(index: int, reason: int, run: memoryview) -> bool:
        if reason == KVM_EXIT_MMIO:
            seen.append(
                (
                    mmio("struct kvm_run", "mmio", "phys_addr").get(run),
                    mmio("struct kvm_run", "mmio", "len").get(run),
                    mmio("struct kvm_run", "mmio", "is_write").get(run),
                )
            )
            return True
        return False

    s = Session(m.vm, "x86", exit_handler=device)
    try:
        s.insert_point(sw(m.sym("near_code")))
        ev = run_to_stop(s)
        assert halted(ev), ev
        assert s.state.guard is not None and s.state.guard.applied and s.state.guard.stores == 0
        assert seen == [(device_page + 0x10, 8, 1)]
        assert rom in m.vm.memory_slots()  # type: ignore[attr-defined]
        s.detach()
        assert m.vm.memory_slots() == layout  # type: ignore[attr-defined]
    finally:
        s.close()


@pytest.mark.parametrize("second_trap", [False, True])
def test_a_store_over_trap_words_updates_each_original_and_keeps_them_armed(
    loader: pathlib.Path, second_trap: bool
) -> None:
    m = machines.emulated(loader)
    m.start_at("straddle_store")
    value = bytes(range(0x41, 0x49))
    m.set_regs(rax=int.from_bytes(value, "little"))
    near = m.sym("near_code")
    s = Session(m.vm, "x86", exit_handler=lambda i, r, run: False)
    try:
        s.insert_point(sw(near))
        if second_trap:
            s.insert_point(sw(near + 3))
        ev = run_to_stop(s)
        assert halted(ev)
        traps = [near, near + 3] if second_trap else [near]
        for addr in traps:
            entry = s.points.trap_at(DEFAULT_SPACE, addr)
            assert entry is not None and entry.original == value[addr - near : addr - near + 1]
        memory = bytearray(value)
        for addr in traps:
            memory[addr - near] = INT3[0]
        assert m.vm.read_phys(near, 8) == bytes(memory)  # the traps armed, the rest the guest's
        assert s.read_memory(0, near, 8) == value  # the debugger sees what the guest wrote
        s.detach()
        assert m.vm.read_phys(near, 8) == value  # removal leaves the guest's new bytes
    finally:
        s.close()


def test_a_store_of_the_same_bytes_changes_nothing(loader: pathlib.Path) -> None:
    m = machines.emulated(loader)
    m.start_at("straddle_store")
    near = m.sym("near_code")
    before = m.vm.read_phys(near, 8)
    m.set_regs(rax=int.from_bytes(before, "little"))
    s = Session(m.vm, "x86", exit_handler=lambda i, r, run: False)
    try:
        s.insert_point(sw(near))
        assert halted(run_to_stop(s))
        entry = s.points.trap_at(DEFAULT_SPACE, near)
        assert entry is not None and entry.original == before[:1]
        assert s.stats.trap_words_rewritten == 0
        assert m.vm.read_phys(near, 8) == INT3 + before[1:]
        s.detach()
        assert m.vm.read_phys(near, 8) == before
    finally:
        s.close()


def test_after_migration_the_destination_write_protects_the_trap_pages(
    loader: pathlib.Path,
) -> None:
    """The migration document carries the trap words (address, saved original); the read-only
    slots are derived from them, so the destination makes its own at its first resume and the
    loader's later copies keep the breakpoint there too."""
    src, dst = machines.emulated(loader), machines.emulated(loader)
    src.start_at("start")
    before = dst.vm.memory_slots()  # type: ignore[attr-defined]
    s = Session(src.vm, "x86")
    dest = src.sym("dest_fn")
    try:
        s.insert_point(sw(dest))
        assert run_to_stop(s).reason.pc == dest  # round 1
        doc = s.save_state()
        machines.copy_state(src, dst)
    finally:
        s.close()
    t = Session.restore(dst.vm, doc)
    try:
        assert _read_only(dst) == []
        t.insert_point(sw(dst.sym("done")))
        stops = [run_to_stop(t).reason.pc for _ in range(4)]
        # round 1's hit again (this session's debugger has not seen it), rounds 2 and 3, the end
        assert stops == [dest, dest, dest, dst.sym("done")]
        assert any(gpa <= dest < gpa + size for gpa, size in _read_only(dst))
        assert dst.u64("result") == 303
        t.detach()
        assert dst.vm.memory_slots() == before  # type: ignore[attr-defined]
    finally:
        t.close()
