"""Read watchpoints (DAC read, page protection on the emulated host) around the VMM's trap-word
writes, which drop the engine's translations of the written range (``Engine.invalidate``).

The suspicion came from the x86 host (docs/reference/unicorn.md §13): Unicorn's drop finds the
page by a fetch walk that fills a TLB entry, and a load through it skipped a read-protected
page's protection. On the e500 engine the drop cannot do that: in virtual-TLB mode a fetch
fills the entry with execute permission only, so a drop takes a read entry away and never adds
one (``test_unicorn_*`` below pin both facts). What these tests found instead is the same hole
opened by other means (docs/reference/unicorn.md §3): Unicorn checks read permission on its
TLB's slow path only, a refused load fills the entry before the check, and taking read
permission away (``mem_protect`` that leaves write permission as it was) does not empty the
TLB. So a load stepped over with the page open, a refused load, or a load made before the
watch was re-armed let the next load of the watched word through: the data-page variants here
failed (no exit at all, or no second exit) until the engine flushed its TLB before a run after
any of those. The code-page variants passed all along only because each run's fetches, and the
trap word's drop, refill the code page's entry with execute permission alone.

The guest (``tests/guests/ppc/rwatch_trap.S``) loads a neighbour of each watched word, passes
``bp_site`` (where the host's trap word goes), then loads ``wtext`` (on the code page, the
trap's own page) and ``wdata`` (on the data page), three rounds."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_WRITE, UcError
from unicorn import ppc_const as ppc

from guestdbg.emuhost import unicorn as ucc
from guestdbg.kvm.constants import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg_booke import abi, regs
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT
from guestdbg_booke.emuhost.engine import CPU_MODELS

from .machine import Machine

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode

DBG = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP | abi.KVM_GUESTDBG_USE_HW_BP
STEP = DBG | KVM_GUESTDBG_SINGLESTEP
WR = abi.KVMPPC_DEBUG_WATCH_READ
WW = abi.KVMPPC_DEBUG_WATCH_WRITE
TRAP = regs.KVMPPC_INST_SW_BREAKPOINT.to_bytes(4, "big")
LOADS = {"wtext": ("load_text", 7), "wdata": ("load_data", 8)}
"""Watched word -> the instruction that loads it and its target register."""
WATCHED = pytest.mark.parametrize("watched", ["wtext", "wdata"])


class Debugger:
    """What a debugger does through the KVM interface: one read watch (``typ``) on a word, and
    a software breakpoint it takes out and puts back to step over."""

    def __init__(self, core: str, watched: str, typ: int = WR) -> None:
        self.m = m = Machine("rwatch_trap", core)
        self.bps = [(m.sym[watched], typ)]
        self.watched = m.sym[watched]
        self.load, self.reg = LOADS[watched]
        m.set_debug(DBG, self.bps)
        m.set_regs()  # the register write that forces MSR[DE] (kvmppc_vcpu_sync_debug)

    def plant(self, name: str) -> bytes:
        original = self.m.vm.read_phys(self.m.sym[name], 4)
        self.m.vm.write_phys(self.m.sym[name], TRAP)
        return original

    def step_over_trap(self, name: str, original: bytes) -> None:
        """Take the trap word out, step the original instruction, put the trap back."""
        m = self.m
        m.vm.write_phys(m.sym[name], original)
        m.set_debug(STEP, self.bps)
        ex = m.run()
        assert (ex.reason, ex.status, m.pc) == (KVM_EXIT_DEBUG, 0, m.sym[name] + 4)
        m.vm.write_phys(m.sym[name], TRAP)
        m.set_debug(DBG, self.bps)

    def expect_watch(self) -> None:
        m = self.m
        ex = m.run()
        assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, WR, self.watched)
        assert m.pc == m.sym[self.load]
        assert m.gpr(self.reg) == 0  # the load did not happen (e500 manual §8.4.2)

    def step_over_watch(self) -> None:
        """Disarm the watch, step the load, re-arm it."""
        m = self.m
        m.set_debug(STEP, [])
        ex = m.run()
        assert (ex.reason, m.pc) == (KVM_EXIT_DEBUG, m.sym[self.load] + 4)
        m.set_debug(DBG, self.bps)


@WATCHED
def test_a_read_watch_fires_after_each_pass_over_a_software_breakpoint(
    core: str, watched: str
) -> None:
    # Before the trap, every round loads the watched word's neighbour (stepped over with the
    # page open); the trap word goes out and back in; then the watched load must exit, in
    # every round, after the watch was stepped over and re-armed in the round before.
    d = Debugger(core, watched)
    m = d.m
    original = d.plant("bp_site")
    for round_ in range(1, 4):
        ex = m.run()
        assert (ex.reason, ex.status, m.pc) == (KVM_EXIT_DEBUG, 0, m.sym["bp_site"])
        d.step_over_trap("bp_site", original)
        d.expect_watch()
        assert m.gpr(10) == round_
        d.step_over_watch()
        ex = m.run()
        assert (ex.reason, ex.mmio_addr, ex.mmio_word) == (KVM_EXIT_MMIO, HOSTIO_CHECKPOINT, round_)
    assert m.run_to_done() == 3 * 0x11101


@WATCHED
def test_resuming_at_a_watched_load_exits_again(core: str, watched: str) -> None:
    # The load is suppressed, so returning to it re-takes the event; a trap word written and
    # taken out in between (a breakpoint the debugger inserts and removes) changes nothing.
    d = Debugger(core, watched)
    d.expect_watch()
    d.expect_watch()
    original = d.plant("bp_site")
    d.m.vm.write_phys(d.m.sym["bp_site"], original)
    d.expect_watch()


@WATCHED
def test_the_load_right_after_a_breakpoint_on_it_is_removed_exits_for_the_watch(
    core: str, watched: str
) -> None:
    # A breakpoint on the watched load itself: the trap exits first; with the trap word taken
    # out, the single step over the load is suppressed by the DAC event instead.
    d = Debugger(core, watched)
    m = d.m
    original = d.plant(d.load)
    ex = m.run()
    assert (ex.reason, ex.status, m.pc) == (KVM_EXIT_DEBUG, 0, m.sym[d.load])
    m.vm.write_phys(m.sym[d.load], original)
    m.set_debug(STEP, d.bps)
    d.expect_watch()


@WATCHED
def test_a_watch_re_armed_just_before_the_load_exits(core: str, watched: str) -> None:
    # The debugger steps the load with the watch disarmed (the page readable), re-arms the
    # watch and goes back to the load: the very next instruction must exit.
    d = Debugger(core, watched)
    m = d.m
    d.expect_watch()
    d.step_over_watch()
    m.set_regs(pc=m.sym[d.load], **{f"r{d.reg}": 0})
    d.expect_watch()


def test_an_access_watch_fires_again_on_the_same_load(core: str) -> None:
    # Read and write watched: the page loses both permissions; a refused load still left a
    # TLB entry through which the resumed load ran.
    d = Debugger(core, "wdata", WR | WW)
    d.expect_watch()
    d.expect_watch()


def test_the_guest_runs_to_its_end_once_the_watch_is_gone(core: str) -> None:
    d = Debugger(core, "wdata")
    d.expect_watch()
    d.m.set_debug(DBG, [])
    assert d.m.checkpoints() == [1, 2, 3]
    assert d.m.gpr(11) == 3 * 0x11101


# -- the Unicorn facts, on an engine set up like the e500 host's ------------------------------

RAM, DATA = 0x100000, 0x101000
LWZ_R5_0_R4 = bytes.fromhex("80a40000")


def _engine() -> tuple[Any, list[int]]:
    """An engine as ``Engine`` makes it (virtual TLB), an ``lwz r5, 0(r4)`` at ``RAM`` with r4 =
    ``DATA``, and the addresses the read-protection hook refused."""
    uc = ucc.new_uc(ucc.UC_ARCH_PPC, ucc.UC_MODE_PPC32 | ucc.UC_MODE_BIG_ENDIAN)
    uc.ctl_set_cpu_model(CPU_MODELS["e500mc"])
    uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
    uc.mem_map(RAM, 0x2000, UC_PROT_ALL)
    uc.mem_write(RAM, LWZ_R5_0_R4)
    uc.reg_write(ppc.UC_PPC_REG_4, DATA)
    refused: list[int] = []
    uc.hook_add(
        ucc.UC_HOOK_MEM_READ_PROT, lambda _uc, _a, addr, _s, _v, _u: refused.append(addr) or False
    )
    return uc, refused


def _load_refused(uc: Any, refused: list[int]) -> bool:
    refused.clear()
    with contextlib.suppress(UcError):  # the refusal ends the run with an error
        uc.emu_start(RAM, 0xFFFFFFFF, count=1)
    return refused == [DATA]


def test_unicorn_a_drop_of_a_read_protected_page_leaves_its_protection_in_place() -> None:
    uc, refused = _engine()
    uc.mem_protect(DATA, 0x1000, UC_PROT_WRITE | UC_PROT_EXEC)
    ucc.TranslationDropper(uc)(DATA, DATA + 4)
    assert _load_refused(uc, refused)


def test_unicorn_a_refused_load_lets_the_next_one_through_until_the_tlb_is_flushed() -> None:
    uc, refused = _engine()
    uc.mem_protect(DATA, 0x1000, UC_PROT_WRITE | UC_PROT_EXEC)
    assert _load_refused(uc, refused)
    assert not _load_refused(uc, refused)  # the gap the engine's flush closes
    ucc.TranslationDropper(uc).flush_tlb()
    assert _load_refused(uc, refused)
