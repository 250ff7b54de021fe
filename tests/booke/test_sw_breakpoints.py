"""Software breakpoints: the word KVM_REG_PPC_DEBUG_INST names, and honest memory around it.

The trap word is never hard-coded: ``kvmppc_get_one_reg`` reports ``KVMPPC_INST_SW_BREAKPOINT``
(0x00dddd00 on current kernels, ``ehpriv 1`` = 0x7c000a1c on the 2014 ones;
docs/reference/kvm-debug-abi.md §3.5), and the plugin reads it when a vCPU is set up.
QEMU's ``kvm_arch_insert_sw_breakpoint`` / ``remove_sw_breakpoint`` save the original word and
restore it only if the trap is still there (same document, §5.2); the debugger's reads see the
original words (docs/reference/peers.md §5.11).
"""

from __future__ import annotations

import pytest

from guestdbg.events import StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg_booke import abi

from .conftest import MakeSession
from .harness import HostIo, Machine, run_to_done, run_to_stop, stop_of, word

FLAVOURS = {"dddd00": 0x00DDDD00, "ehpriv": 0x7C000A1C}
ADDI_R20_R20_0x10 = 0x3A940010
"""``addi r20, r20, 0x10`` (the guest's ``code_b`` is ``addi r20, r20, 1``)."""


def sw(addr: int) -> DebugPoint:
    return DebugPoint(PointKind.SW_BREAK, addr, 4)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_the_trap_word_is_debug_inst_of_either_kernel_flavour_and_it_stops_the_guest(
    core: str, flavour: str, session: MakeSession
) -> None:
    m = Machine("booke_points", core, sw_break_flavour=flavour)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    trap = word(FLAVOURS[flavour])
    assert word(m.one_reg(abi.KVM_REG_PPC_DEBUG_INST)) == trap == s.ops[0].sw_break_insn
    at = m.sym["code_b"]
    original = m.vm.read_phys(at, 4)
    s.insert_point(sw(at))
    assert m.vm.read_phys(at, 4) == trap
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, at, None)
    assert m.gpr(20) == 1  # code_a ran, code_b not yet
    assert s.remove_point(sw(at)) is None
    assert m.vm.read_phys(at, 4) == original
    assert run_to_done(s, io)[-1][0] is StopKind.HALT
    assert io.done == 3


def test_reads_show_the_original_words_also_when_they_straddle_a_breakpoint(
    core: str, session: MakeSession
) -> None:
    m = Machine("booke_points", core)
    s = session(m.vm, core)
    first, last = m.sym["code_a"], m.sym["store_a"]  # three adjacent words
    lo, hi = first - 8, last + 12
    pristine = m.vm.read_phys(lo, hi - lo)
    for at in (first, m.sym["code_b"], last):
        s.insert_point(sw(at))
    assert m.vm.read_phys(first, 4) == s.ops[0].sw_break_insn  # the traps are in memory
    for start in range(lo, hi):
        for length in range(1, min(13, hi - start) + 1):
            got = s.read_memory(0, start, length)
            assert got == pristine[start - lo : start - lo + length], (hex(start), length)


@pytest.mark.parametrize(
    ("offset", "data", "result"),
    [(0, word(ADDI_R20_R20_0x10), 0x12), (2, b"\x00\x20", 0x22)],
    ids=["whole_word", "low_half"],
)
def test_debugger_writes_over_a_breakpoint_update_the_saved_original(
    core: str, session: MakeSession, offset: int, data: bytes, result: int
) -> None:
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    at = m.sym["code_b"]
    s.insert_point(sw(at))
    after = m.vm.read_phys(at + 4, 4)
    s.write_memory(0, at + offset, data + after[:2])  # also covers the next word, unchanged
    new = s.read_memory(0, at, 8)
    assert new[offset : offset + len(data)] == data and new[4:] == after
    assert m.vm.read_phys(at, 4) == s.ops[0].sw_break_insn  # still armed
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, at, None)
    run_to_done(s, io)  # stepping over the trap runs the debugger's new instruction
    assert io.done == result
    assert s.remove_point(sw(at)) is None
    assert m.vm.read_phys(at, 8) == new


def test_a_guest_rewriting_its_code_over_a_breakpoint_is_found_at_the_next_stop_and_rearmed(
    core: str, session: MakeSession
) -> None:
    """No read-only slots on BookE (docs/reference/kvm-debug-abi.md §11): the guest's store
    replaces the trap word and its new instruction runs with no stop; the next stop finds the
    rewrite, takes the guest's word as the original and puts the trap back over it."""
    m = Machine("booke_selfmod", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    trap = s.ops[0].sw_break_insn
    patched, store = m.sym["patched"], m.sym["patch_store"]
    li_r7_1 = m.vm.read_phys(patched, 4)
    li_r7_2 = m.vm.read_phys(m.sym["new_word"], 4)
    s.insert_point(sw(patched))
    s.insert_point(sw(store))
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, store, None)
    assert s.read_memory(0, patched, 4) == li_r7_1
    ev = run_to_stop(s)
    assert ev.reason.kind is StopKind.HALT and io.done == 2
    (notice,) = ev.notices
    assert f"at {patched:#x} (now {li_r7_2.hex()}, was {li_r7_1.hex()})" in notice
    assert m.vm.read_phys(patched, 4) == trap  # re-armed over the guest's word
    assert s.read_memory(0, patched, 4) == li_r7_2  # which reads show
    assert s.remove_point(sw(patched)) is None
    assert m.vm.read_phys(patched, 4) == li_r7_2  # the guest's word, restored
    assert s.remove_point(sw(store)) is None
    assert m.vm.read_phys(store, 4) != trap


def _overwritten_unseen(core: str, session: MakeSession) -> tuple[Machine, Session]:
    """A trap word the VMM overwrote without telling the session (no
    ``guest_memory_written``), the VM stopped: no stop has looked at it since."""
    m = Machine("booke_selfmod", core)
    s = session(m.vm, core)
    patched = m.sym["patched"]
    s.insert_point(sw(patched))
    m.vm.write_phys(patched, m.vm.read_phys(m.sym["new_word"], 4))
    return m, s


def test_removal_of_a_breakpoint_overwritten_unseen_keeps_the_new_word_and_says_so(
    core: str, session: MakeSession
) -> None:
    m, s = _overwritten_unseen(core, session)
    patched = m.sym["patched"]
    li_r7_2 = m.vm.read_phys(m.sym["new_word"], 4)
    note = s.remove_point(sw(patched))
    assert note is not None and "overwritten by the guest" in note
    assert m.vm.read_phys(patched, 4) == li_r7_2  # the new word wins
    assert s.read_memory(0, patched, 4) == li_r7_2


def test_reads_show_the_new_word_of_a_breakpoint_overwritten_unseen(
    core: str, session: MakeSession
) -> None:
    """The word in memory is not the trap, so there is nothing to hide and the saved original
    is stale (showing it would be a lie)."""
    m, s = _overwritten_unseen(core, session)
    patched = m.sym["patched"]
    assert s.read_memory(0, patched, 4) == m.vm.read_phys(patched, 4)


def test_a_debugger_write_where_a_breakpoint_was_overwritten_unseen_reaches_memory(
    core: str, session: MakeSession
) -> None:
    m, s = _overwritten_unseen(core, session)
    patched = m.sym["patched"]
    s.write_memory(0, patched, word(ADDI_R20_R20_0x10))
    assert m.vm.read_phys(patched, 4) == word(ADDI_R20_R20_0x10)
