"""What the e500 engine keeps between runs to make a KVM_RUN cheap, and when it must not.

The model re-arms the engine at every guest entry (KVM loads the debug registers at every
entry, ``switch_booke_debug_regs``) and a step adds an exit of its own for one run; the engine
skips what would change nothing. These tests check that skipping never leaves the engine armed
differently from what a fresh arming would give.
"""

from __future__ import annotations

import pytest

from guestdbg.emuhost import unicorn as ucc
from guestdbg.emuhost.memory import PAGE_SIZE, GuestMemory
from guestdbg_booke import regs
from guestdbg_booke.emuhost.engine import Engine, StopKind
from guestdbg_booke.emuhost.facility import DebugFacility
from guestdbg_booke.emuhost.kvm_state import VcpuArch

LOOP = 0x1000
ADDI_R3_1 = 0x38630001
STW_R3_0_R4 = 0x90640000
B_BACK_8 = 0x4BFFFFF8  # b LOOP from LOOP + 8
MSR_PR = 0x4000


def engine(*words: int) -> Engine:
    ram = GuestMemory("big")
    ram.add_slot(0, 2 * PAGE_SIZE)
    ram.write(LOOP, b"".join(w.to_bytes(4, "big") for w in words))
    return Engine("e500mc", ram)


def test_a_steps_own_exit_does_not_stop_a_later_free_run() -> None:
    """A step ends its block at the next instruction with an exit of its own; the free run
    after it must run through that address (a full slice here), not stop there."""
    eng = engine(ADDI_R3_1, ADDI_R3_1, B_BACK_8)
    stop = eng.run(LOOP + 4, MSR_PR, step=True)  # its exit: LOOP + 8
    assert stop.kind is StopKind.STEP and stop.pc == LOOP + 8
    stop = eng.run(LOOP + 8, MSR_PR, step=False)
    assert stop.kind is StopKind.NONE
    assert eng.gpr(3) > 1 + 1000  # stopped at LOOP + 8 again it would have done two addi


def test_an_armed_exit_survives_a_step_and_a_pass() -> None:
    eng = engine(ADDI_R3_1, ADDI_R3_1, B_BACK_8)
    eng.set_code_breaks([LOOP + 4])
    stop = eng.run(LOOP, MSR_PR, step=False)
    assert stop.kind is StopKind.CODE_BREAK and stop.pc == LOOP + 4
    stop = eng.run(LOOP + 4, MSR_PR, step=True, pass_exit=LOOP + 4)
    assert stop.kind is StopKind.STEP and stop.pc == LOOP + 8
    stop = eng.run(LOOP + 8, MSR_PR, step=False)
    assert stop.kind is StopKind.CODE_BREAK and stop.pc == LOOP + 4
    assert eng.gpr(3) == 3


def test_the_exit_setter_calls_unicorn_only_for_a_change() -> None:
    eng = engine(ADDI_R3_1)
    setter = ucc.ExitSetter(eng.uc)
    setter(frozenset({0x40, 0x80}))
    assert sorted(eng.uc.ctl_get_exits()) == [0x40, 0x80]
    assert setter.held == {0x40, 0x80}
    eng.uc.ctl_set_exits([0x100])  # behind its back: it still believes 0x40, 0x80
    setter(frozenset({0x80, 0x40}))
    assert list(eng.uc.ctl_get_exits()) == [0x100]
    setter(frozenset())
    assert list(eng.uc.ctl_get_exits()) == []


def test_a_watch_outside_ram_is_armed_once_ram_appears_there() -> None:
    """The facility re-arms only for a different register image, or after the engine's
    mappings changed: a DAC on a page no slot held arms nothing, and the same DAC must
    protect the page once a slot maps it."""
    eng = engine(STW_R3_0_R4)
    watched = 2 * PAGE_SIZE
    arch = VcpuArch(core="e500mc", vcpu_id=0, pvr=0, svr=0)
    arch.dbg_reg.dbcr0 = regs.DBCR0_IDM | regs.DBCR0_DAC1W
    arch.dbg_reg.dac1 = watched
    fac = DebugFacility(arch)
    fac.attach(eng)
    eng.set_gpr(4, watched)
    fac.load()
    assert eng.run(LOOP, MSR_PR, step=True).kind is StopKind.MMIO
    eng.ram.add_slot(watched, PAGE_SIZE)
    fac.load()
    stop = eng.run(LOOP, MSR_PR, step=True)
    assert stop.kind is StopKind.PROT and stop.addr == watched and stop.is_write
    arch.dbg_reg.dbcr0 = 0
    fac.load()
    assert eng.run(LOOP, MSR_PR, step=True).kind is StopKind.STEP
    assert eng.ram.uint(watched, 4) == eng.gpr(3)


def test_an_interrupt_hook_that_raises_stops_the_run_with_its_exception() -> None:
    """The engine's interrupt hook is called from C without the binding's wrapper: an
    exception in it must still end the run and come out of ``emu_start``, as the binding's
    guard does it."""
    eng = engine(0x00DDDD00, ADDI_R3_1)  # an illegal word: an interrupt

    class Boom(Exception):
        pass

    seen: list[int] = []

    def raising(intno: int) -> None:
        seen.append(intno)
        raise Boom

    ucc.InterruptHook(eng.uc, raising)
    with pytest.raises(Boom):
        eng.run(LOOP, MSR_PR, step=False)
    assert len(seen) == 1  # one interrupt, one call
    stop = eng.run(LOOP + 4, MSR_PR, step=True)  # the engine runs on afterwards
    assert stop.kind is StopKind.STEP
