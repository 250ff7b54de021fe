"""A debug Session (guestdbg.session) on the 64-bit hosts: software and hardware breakpoints, a
watchpoint and the guest's own events on a 64-bit guest in 64-bit mode.

It needs the BookE plugin to declare e5500/e6500 (their ``CoreInfo``); until it does, the test
says so and skips, and ``test_hosts64.py`` covers the same at the ioctl level.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from emuhost.machine import CORES64, guest

from guestdbg.emuhost import image
from guestdbg.errors import UnknownArch
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.plugins import default_registry
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke import abi, regs
from guestdbg_booke.emuhost import HOSTIO_DONE, EmulatedBookeVm

MMIO_ADDR = abi.layout().field("struct kvm_run", "mmio", "phys_addr")
CM_GS = regs.MSR_CM | regs.MSR_GS


def stop_at_done(index: int, reason: int, run: memoryview) -> bool:
    """The guest's done store stops the VM (a HALT stop); checkpoints and other MMIO run on."""
    return not (reason == KVM_EXIT_MMIO and MMIO_ADDR.get(run) == HOSTIO_DONE)


FAR = 1 << 32


def open_session(core: str, name: str) -> tuple[Session, dict[str, int]]:
    try:
        default_registry().resolve(core)
    except UnknownArch:
        pytest.skip(f"the installed BookE plugin does not declare {core} yet")
    vm = EmulatedBookeVm(core)
    vm.memory.add_slot(FAR, 0x10000)  # RAM at 4 GiB, for far64
    vm.load_elf(guest(name))
    return Session(vm, core, exit_handler=stop_at_done), dict(image.symbols(guest(name)))


@pytest.fixture(params=CORES64)
def session(request: pytest.FixtureRequest) -> Iterator[tuple[Session, dict[str, int]]]:
    s, sym = open_session(str(request.param), "traps64")
    try:
        yield s, sym
    finally:
        s.close()


def resume(s: Session, kind: StopKind) -> int:
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is kind, ev
    return int(ev.reason.pc)


def test_breakpoints_a_watchpoint_and_the_guests_own_events_in_64_bit_mode(
    session: tuple[Session, dict[str, int]],
) -> None:
    s, sym = session
    s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["own_sc"], 4))
    s.insert_point(DebugPoint(PointKind.HW_BREAK, sym["loop_top"], 4))
    s.insert_point(DebugPoint(PointKind.WATCH_WRITE, sym["counter"], 8))
    assert resume(s, StopKind.SW_BREAK) == sym["own_sc"]  # the guest's tw went to the guest
    for n in range(3):
        assert resume(s, StopKind.HW_BREAK) == sym["loop_top"]
        assert resume(s, StopKind.WATCH) == sym["store_insn"]
        assert s.read_memory(0, sym["counter"], 8) == n.to_bytes(8, "big")
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.HALT
    log = s.read_memory(0, sym["log"], 3 * 40)
    entries = [struct.unpack_from(">5Q", log, 40 * i) for i in range(3)]
    # the guest's own trap, sc and software-breakpoint word (re-injected by the session: a
    # program interrupt with ESR[PIL], SRR0 the 64-bit address, MSR[CM] from EPCR[ICM])
    assert [(e[0], e[1], e[3]) for e in entries] == [
        (6, sym["own_trap"], regs.ESR_PTR),
        (8, sym["own_sc"] + 4, regs.ESR_PTR),
        (6, sym["own_swbp"], regs.ESR_PIL),
    ]
    assert all(e[4] & CM_GS == CM_GS for e in entries)


@pytest.mark.parametrize("core", CORES64)
def test_the_guests_own_breakpoint_word_above_4_gib_is_reinjected_with_64_bit_srr0(
    core: str,
) -> None:
    """Host software breakpoints on (USE_SW_BP), so the guest's own word exits to the session,
    which re-injects it: SRR0 = the 64-bit address, ESR[PIL], MSR[CM] from EPCR[ICM]."""
    s, sym = open_session(core, "far64")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["done"], 4))
        assert resume(s, StopKind.SW_BREAK) == sym["done"]
        raw = s.read_memory(0, sym["plog"], 2 * 32)
        entries = [struct.unpack_from(">4Q", raw, 32 * i) for i in range(2)]
        assert [(e[0], e[2]) for e in entries] == [(FAR + 4, regs.ESR_PIL)] * 2
        # SRR1 and the handler's MSR: 64-bit mode in guest state (MSR[DE] may show too: the
        # kernel forces it into a BookE-HV guest's MSR while the host debugs)
        assert all(e[1] & CM_GS == CM_GS and e[3] & CM_GS == CM_GS for e in entries)
    finally:
        s.close()
