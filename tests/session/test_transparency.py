"""Transparency (issue 4): a guest that takes its own exceptions reaches the same final memory
and the same sequence of handler invocations with and without a host debugger that sets
breakpoints and watchpoints elsewhere and continues after each stop (hypothesis over random
placements).

Host-priority: the guest uses its own trap instructions (``tw``, ``sc``, and its own breakpoint
word 0x00dddd00, which KVM hands to the host as an exit and guestdbg re-injects). A guest that
also uses its own IAC/DAC or single-step loses them under host-priority (KVM BookE shares one
debug register image; see ``guestdbg_booke.debugops``): that case is the guest-priority test.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guestdbg.errors import UnsupportedByArch
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_DONE, EmulatedBookeVm

from .support import guest, symbols

GUEST = "transp_traps"
SYM = symbols(GUEST)
L = abi.layout()
MMIO_ADDR = L.field("struct kvm_run", "mmio", "phys_addr")
TEXT = (SYM["_start"], SYM["syscall_h"] + 5 * 4)
DATA = (SYM["vars"], SYM["plog"] + 16 * 16)
INSNS = list(range(SYM["round"], TEXT[1], 4))
WORDS = list(range(DATA[0], DATA[1], 4))


Span = tuple[int, int]


def new_vm(name: str = GUEST) -> EmulatedBookeVm:
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(guest(name))
    return vm


def image(vm: EmulatedBookeVm, text: Span = TEXT, data: Span = DATA) -> tuple[bytes, bytes]:
    """The guest's code and data (compared after detach, when no trap word is left)."""
    return vm.read_phys(text[0], text[1] - text[0]), vm.read_phys(data[0], data[1] - data[0])


def undebugged(name: str, text: Span, data: Span) -> tuple[bytes, bytes]:
    """The guest run to its end with no debugger at all: the reference."""
    vm = new_vm(name)
    v = vm.vcpus[0]
    for _ in range(100):
        v.run()
        if MMIO_ADDR.get(v.kvm_run) == HOSTIO_DONE:
            return image(vm, text, data)
    raise AssertionError("the guest never finished on its own")


BASELINE = undebugged(GUEST, TEXT, DATA)


def stop_at_done(index: int, reason: int, run: memoryview) -> bool:
    return not (reason == KVM_EXIT_MMIO and MMIO_ADDR.get(run) == HOSTIO_DONE)


points = st.lists(
    st.one_of(
        st.builds(DebugPoint, st.just(PointKind.SW_BREAK), st.sampled_from(INSNS), st.just(4)),
        st.builds(DebugPoint, st.just(PointKind.HW_BREAK), st.sampled_from(INSNS), st.just(4)),
        st.builds(
            DebugPoint,
            st.sampled_from([PointKind.WATCH_WRITE, PointKind.WATCH_READ, PointKind.WATCH_ACCESS]),
            st.sampled_from(WORDS),
            st.just(4),
        ),
    ),
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points)
def test_host_points_elsewhere_leave_the_guests_own_exceptions_intact(
    placement: list[DebugPoint],
) -> None:
    vm = new_vm()
    s = Session(vm, "e500mc", exit_handler=stop_at_done)
    try:
        hw = [p for p in placement if p.kind is PointKind.HW_BREAK][:2]
        watches = [p for p in placement if p.kind.is_watch][:2]
        sw = [p for p in placement if p.kind is PointKind.SW_BREAK]
        for p in sw + hw + watches:
            s.insert_point(p)
        stops = 0
        while True:
            s.resume({0: ResumeAction()})
            ev = s.wait_stop(10)
            assert ev is not None
            if ev.reason.kind is StopKind.HALT:
                break
            stops += 1
            assert stops < 500, "the guest made no progress under the debugger"
        s.detach()
        s.interrupt()
        s.wait_stop(10)
        assert image(vm) == BASELINE
        # With software breakpoints set, KVM exits on the guest's own breakpoint word too
        # (USE_SW_BP) and guestdbg re-injects it, once per round; without, the kernel delivers it.
        assert s.filter_stats().reinjected == (3 if sw else 0)
    finally:
        s.close()


# -- guest-priority: the guest keeps its own IAC, DAC, single-step and trap events -------------

GP_GUEST = "transp_debug"
GP = symbols(GP_GUEST)
GP_TEXT = (GP["_start"], GP["text_end"])
GP_DATA = (GP["dac_word"], GP["data_end"])
RFDI = GP["dbg_h_v2"] - 4  # the e500mc handler's last instruction
GP_INSNS = [a for a in range(GP["round"], GP["text_end"], 4) if a != RFDI]


def gp_vm() -> EmulatedBookeVm:
    return new_vm(GP_GUEST)


def gp_image(vm: EmulatedBookeVm) -> tuple[bytes, bytes]:
    return image(vm, GP_TEXT, GP_DATA)


GP_BASELINE = undebugged(GP_GUEST, GP_TEXT, GP_DATA)

gp_points = st.lists(
    st.tuples(
        st.sampled_from([PointKind.SW_BREAK, PointKind.HW_BREAK, PointKind.WATCH_WRITE]),
        st.sampled_from(GP_INSNS),
    ),
    max_size=5,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gp_points, st.booleans())
def test_guest_priority_keeps_the_guests_own_debug_events_under_a_host_debugger(
    placement: list[tuple[PointKind, int]], step_some: bool
) -> None:
    """The guest's IAC, DAC, instruction-complete and trap debug events and its own traps all
    reach its handlers, in the same order with the same DBSR/MSR/save-restore values, while the
    host sets breakpoints (hardware ones served by trap words), has its watchpoints refused,
    steps now and then, and continues after each stop."""
    vm = gp_vm()
    s = Session(vm, "e500mc", policy="guest-priority", exit_handler=stop_at_done)
    try:
        for kind, addr in placement:
            if kind.is_watch:
                before = list(s.points.all_points())
                with pytest.raises(UnsupportedByArch, match="watchpoints"):
                    s.insert_point(DebugPoint(kind, GP["dac_word"], 4))
                assert list(s.points.all_points()) == before
                continue
            s.insert_point(DebugPoint(kind, addr, 4))
        stops = 0
        while True:
            s.resume({0: ResumeAction(step=step_some and stops % 3 == 1)})
            ev = s.wait_stop(10)
            assert ev is not None
            if ev.reason.kind is StopKind.HALT:
                break
            stops += 1
            assert stops < 500, "the guest made no progress under the debugger"
        s.detach()
        s.interrupt()
        s.wait_stop(10)
        assert gp_image(vm) == GP_BASELINE
    finally:
        s.close()


def test_guest_priority_cannot_step_over_rfdi_and_says_why(sessions: list[Session]) -> None:
    """rfdi returns to DSRR0, which KVM BookE does not expose, so a planted-trap step cannot
    know where it goes: the resume is refused with a clear error, the guest left as it was."""
    vm = gp_vm()
    s = Session(vm, "e500mc", policy="guest-priority", exit_handler=stop_at_done)
    sessions.append(s)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, RFDI, 4))
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.pc == RFDI
    before = vm.snapshot()
    with pytest.raises(UnsupportedByArch, match="rfdi"):
        s.resume({0: ResumeAction()})
    assert vm.snapshot() == before


def test_guest_priority_never_touches_kvm_guest_debug(sessions: list[Session]) -> None:
    """KVM_SET_GUEST_DEBUG without ENABLE still zeroes the one DBCR0 the kernel keeps for host
    and guest (kvm_arch_vcpu_ioctl_set_guest_debug), so under guest-priority the session must
    never issue it: here the host's only breakpoint goes away while the guest is in the middle
    of its own instruction-complete stepping, which must go on undisturbed."""
    vm = gp_vm()
    s = Session(vm, "e500mc", policy="guest-priority", exit_handler=stop_at_done)
    sessions.append(s)
    bp = DebugPoint(PointKind.SW_BREAK, GP["ic_first"] + 4, 4)
    s.insert_point(bp)
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.pc == GP["ic_first"] + 4
    s.remove_point(bp)
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.HALT
    assert s.stats.set_guest_debug_calls == 0
    assert gp_image(vm) == GP_BASELINE


def test_a_breakpoint_and_a_trap_served_hbreak_at_one_address_share_the_word(
    sessions: list[Session],
) -> None:
    vm = gp_vm()
    s = Session(vm, "e500mc", policy="guest-priority", exit_handler=stop_at_done)
    sessions.append(s)
    addr = GP["round"] + 8
    original = vm.read_phys(addr, 4)
    hw, sw = DebugPoint(PointKind.HW_BREAK, addr, 4), DebugPoint(PointKind.SW_BREAK, addr, 4)
    s.insert_point(hw)
    s.insert_point(sw)
    assert s.read_memory(0, addr, 4) == original
    for _ in range(2):
        s.resume({0: ResumeAction()})
        ev = s.wait_stop(10)
        assert ev is not None and ev.reason.pc == addr
    s.remove_point(hw)
    assert vm.read_phys(addr, 4) == s.trap_writer.insn  # the software breakpoint still needs it
    s.remove_point(sw)
    assert vm.read_phys(addr, 4) == original
