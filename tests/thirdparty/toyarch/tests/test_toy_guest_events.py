"""The toy's own behaviour beyond the kit: the guest's events go back to the guest, end to end.

The kit checks ``guest_verdict`` on the exit images the profile states; these run a real
Session on the toy host and count what the guest's handlers saw.
"""

from __future__ import annotations

import pytest
from guestdbg.errors import InvalidRequest
from guestdbg.events import ResumeAction, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session

from guestdbg_toyarch.isa import assemble
from guestdbg_toyarch.vm import ToyVm

OWN_TRAPS = """
        .org 0x10               # trap handler: count, return past the trap
        ld   r6, traps(r0)
        addi r6, r6, 1
        st   r6, traps(r0)
        rfe
        .org 0x20               # debug handler: count single steps (rfe restores sr.SS)
        ld   r6, steps(r0)
        addi r6, r6, 1
        st   r6, steps(r0)
        rfe
        .org 0x100
_start: li   r1, 0
loop:   addi r1, r1, 1
        trap 7
        st   r1, passes(r0)
        b    loop
stepper: li  r5, 2
        mtsr r5
spin:   nop
        b    spin
        .org 0x1000
passes: .word 0
traps:  .word 0
steps:  .word 0
"""


def word(vm: ToyVm, addr: int) -> int:
    return int.from_bytes(vm.read_phys(addr, 4), "big")


def test_guest_trap_reaches_its_handler_once_per_pass_while_the_host_traps_too() -> None:
    """With a host software breakpoint armed every ``trap`` leaves KVM_RUN (USE_SW_BP); the
    guest's own goes back to it exactly once per execution, never reported."""
    vm = ToyVm()
    at = vm.load(OWN_TRAPS)
    s = Session(vm, "toy")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, at["loop"], 4))
        for _ in range(5):
            s.resume({0: ResumeAction()})
            stop = s.wait_stop(timeout=5)
            assert stop is not None and stop.reason.kind is StopKind.SW_BREAK
            assert stop.reason.pc == at["loop"]
        assert word(vm, at["traps"]) == word(vm, at["passes"]) == 4
        assert s.filter_stats().reinjected == 4
    finally:
        s.close()


def test_guest_trap_under_a_host_breakpoint_still_reaches_its_handler() -> None:
    """GDB's breakpoint on the guest's own ``trap 7``: each pass stops once for the host, and on
    continuing (the session steps over with ``trap 7`` put back) the guest still gets its trap."""
    vm = ToyVm()
    at = vm.load(OWN_TRAPS)
    s = Session(vm, "toy")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, at["loop"] + 4, 4))
        for _ in range(4):
            s.resume({0: ResumeAction()})
            stop = s.wait_stop(timeout=5)
            assert stop is not None and stop.reason.kind is StopKind.SW_BREAK
            assert stop.reason.pc == at["loop"] + 4
        assert word(vm, at["traps"]) == word(vm, at["passes"]) == 3
    finally:
        s.close()


def test_guest_single_step_reaches_its_debug_handler_while_the_host_debugs() -> None:
    """sr.SS steps exit to userspace while guest debug is enabled; each is re-injected."""
    vm = ToyVm()
    at = vm.load(OWN_TRAPS, entry="stepper")
    s = Session(vm, "toy")
    try:
        s.insert_point(DebugPoint(PointKind.HW_BREAK, at["spin"], 4))
        s.resume({0: ResumeAction()})
        stop = s.wait_stop(timeout=5)
        assert stop is not None and stop.reason.kind is StopKind.HW_BREAK
        before = word(vm, at["steps"])
        s.resume({0: ResumeAction()})
        stop = s.wait_stop(timeout=5)
        assert stop is not None and stop.reason.pc == at["spin"]
        assert word(vm, at["steps"]) > before
        assert s.filter_stats().reinjected == word(vm, at["steps"])
    finally:
        s.close()


def test_assembler_names_the_bad_line() -> None:
    with pytest.raises(InvalidRequest, match="line 2: unknown instruction 'jmp'"):
        assemble("nop\njmp 0\n")
