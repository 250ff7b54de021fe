"""What the kit caught in the BookE plugin: the guest's own ``ehpriv 1`` used to livelock.

KVM exits for ``ehpriv 1`` whatever guest_debug says (e500_emulate.c
``kvmppc_e500_emul_ehpriv``: status 0, address = PC, PC not advanced). On a kernel whose
breakpoint word is 0x00dddd00 the plugin took that exit for a stale host breakpoint and resumed,
so the guest ran ``ehpriv 1`` again, forever (tens of thousands of exits a second, the guest
stuck). Now it goes back to the guest as the program interrupt QEMU injects, once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from guestdbg.demo.elf_info import symbols
from guestdbg.events import ResumeAction, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg.testing.build_dir import build_dir
from guestdbg.testing.resolve import registry_for
from guestdbg_booke.guests.build import PACKAGE_DIR, build

STOP_TIMEOUT = 10.0


@pytest.fixture(params=["e500mc", "e500v2"])
def session(request: pytest.FixtureRequest) -> Iterator[tuple[Session, dict[str, int]]]:
    reg = registry_for()
    info = reg.arches["ppc_booke"]
    profile = reg.conformance(info, info.core(request.param))
    sym = symbols(build(PACKAGE_DIR / "conformance.S", build_dir("ppc_booke")))
    s = Session(profile.make_vm(), info, request.param, registry=reg)
    yield s, sym
    s.close()


def _stop(s: Session) -> tuple[StopKind, int]:
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(STOP_TIMEOUT)
    if ev is None:
        s.interrupt()
        s.wait_stop(STOP_TIMEOUT)
        raise AssertionError(f"no stop within {STOP_TIMEOUT}s: the guest is stuck")
    return ev.reason.kind, ev.reason.pc


def test_the_guests_own_ehpriv_runs_its_program_handler_once_and_the_loop_goes_on(
    session: tuple[Session, dict[str, int]],
) -> None:
    s, sym = session
    past_setup = DebugPoint(PointKind.SW_BREAK, sym["code0"], 4)
    s.insert_point(past_setup)
    assert _stop(s) == (StopKind.SW_BREAK, sym["code0"])
    s.remove_point(past_setup)
    s.write_registers(0, {s.gdb_arch.pc_regnum: sym["own_ehpriv"]})
    s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["code3"], 4))
    assert _stop(s) == (StopKind.SW_BREAK, sym["code3"])
    programs = int.from_bytes(s.vm.read_phys(sym["programs"], 4), "big")
    assert (programs, s.filter_stats().reinjected, s.filter_stats().resumed) == (1, 1, 0)
