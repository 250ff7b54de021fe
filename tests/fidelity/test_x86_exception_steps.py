"""A host single step, or a host breakpoint and a continue, over an instruction that raises an
exception delivers the guest's exception to its IDT handler exactly once
(``tests/guests/x86/exceptions.S``: int3, int $0x20, ud2, a non-canonical load (#GP), a load from
an unmapped page (#PF)).

Where the step stops: one instruction into the handler, with the exception delivered and the
handler's first instruction executed. That is KVM's instruction emulator (x86.c
``x86_emulate_instruction``): the faulting instruction does not complete, so it reports no step
(``kvm_vcpu_do_singlestep`` runs only without an exception, or for a trap); the exception is
queued and delivered on the next entry; the emulator then exits after the first emulated
instruction of the handler - and this machine's /dev/kvm, which emulates all CPL0 code, stops
there for ud2, #GP and #PF (asserted on both hosts). int3 and int n cannot run at CPL0 on it
(KVM_EXIT_INTERNAL_ERROR: ``emulate_int`` handles real mode only), so those two are asserted on
the emulated host alone. On VMX the same step is a TF trap in hardware, which ``docs/fidelity.md``
discusses ("Host steps over exceptions").
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from x86 import machines
from x86.machines import Machine
from x86.sessions import run_to_stop

from guestdbg.events import StopKind
from guestdbg.kvm import constants as C
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session

UNMAPPED = 0x40000000
SCENARIOS = {
    # name: (vector, handler, frame RIP label: the instruction for faults, past it for traps)
    "bp": (3, "bp_handler", "bp_after"),
    "intn": (32, "intn_handler", "intn_after"),
    "ud": (6, "ud_handler", "ud_insn"),
    "gp": (13, "gp_handler", "gp_insn"),
    "pf": (14, "pf_handler", "pf_insn"),
}
RFLAGS_FIXED_1, RFLAGS_RF = 0x2, 0x10000
TF_IN_FRAME = (
    "KVM sets its single-step TF in the guest's RFLAGS when the step starts at the RIP of "
    "KVM_SET_GUEST_DEBUG (x86.c __kvm_set_rflags, singlestep_rip), so an exception raised by "
    "that instruction is pushed with TF; the handler's iretq turns on the guest's own "
    "single-step and the guest takes a #DB it never asked for (docs/fidelity.md, "
    "x86-kvm-step-tf-in-frame; not reproduced by the emulated host)"
)
KVM_CANNOT = {"bp", "intn"}
"""kvm_pvm: int3 / int n at CPL0 are KVM_EXIT_INTERNAL_ERROR
(docs/reference/this-machine-kvm.md)."""


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return machines.build("exceptions", tmp_path_factory.mktemp("exceptions"))


@pytest.fixture(params=["emulated", "kvm"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "kvm" and machines.kvm_unusable() is not None:
        pytest.skip(str(machines.kvm_unusable()))
    return str(request.param)


@pytest.fixture
def machine(elf: pathlib.Path, kind: str) -> Iterator[Machine]:
    m = machines.emulated(elf) if kind == "emulated" else machines.real(elf)
    yield m
    m.close()


def _skip_if_kvm_cannot(m: Machine, scenario: str) -> None:
    if m.kind == "kvm" and scenario in KVM_CANNOT:
        pytest.skip(f"this /dev/kvm cannot run {scenario} at CPL0 (KVM_EXIT_INTERNAL_ERROR)")


def _assert_delivered_once(m: Machine, scenario: str) -> None:
    vector, _, frame = SCENARIOS[scenario]
    assert m.u64(f"count_{vector}") == 1
    assert m.u64("frame_rip") == m.sym(frame)
    assert m.u64("last_vector") == 2**64 - 1  # no other vector was taken
    if scenario == "pf":
        assert m.u64("fault_cr2") == UNMAPPED
    if scenario in ("gp", "pf"):
        assert m.u64("error_code") == 0  # #GP(0); #PF: a read of a not-present page at CPL0


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_singlestep_over_an_exception_stops_one_instruction_into_its_handler_once(
    machine: Machine, scenario: str
) -> None:
    """KVM_GUESTDBG_SINGLESTEP directly: the first step reaches the instruction, the second
    stops after the handler's first instruction; then the guest runs to its hlt."""
    m = machine
    _skip_if_kvm_cannot(m, scenario)
    _, handler, _ = SCENARIOS[scenario]
    m.start_at(f"{scenario}_start")
    m.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    assert m.run() == C.KVM_EXIT_DEBUG
    assert m.reg("rip") == m.sym(f"{scenario}_insn")
    assert m.run() == C.KVM_EXIT_DEBUG
    exception, pc, dr6 = m.debug_exit()
    assert (exception, pc, dr6) == (1, m.sym(f"{handler}_second"), 0xFFFF4FF0)
    assert m.reg("rip") == m.sym(f"{handler}_second")
    frame_rflags = int.from_bytes(m.vm.read_phys(m.reg("rsp") + 16, 8), "little")
    if scenario in ("gp", "pf"):  # the error code sits below the frame
        frame_rflags = int.from_bytes(m.vm.read_phys(m.reg("rsp") + 24, 8), "little")
    fault = scenario in ("ud", "gp", "pf")
    # no TF: KVM sets its step TF only at the RIP of KVM_SET_GUEST_DEBUG (x86-kvm-step-tf-in-frame)
    assert frame_rflags == RFLAGS_FIXED_1 | (RFLAGS_RF if fault else 0)
    m.guest_debug(0)
    assert m.run() == C.KVM_EXIT_HLT
    assert m.reg("rip") == m.sym(f"{scenario}_done") + 1
    _assert_delivered_once(m, scenario)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_fault_is_pushed_with_rf_and_a_trap_without(machine: Machine, scenario: str) -> None:
    """SDM vol. 3 §18.3.1.1 / x86.c kvm_check_and_inject_events: the RFLAGS image of a fault
    has RF set. The emulated host pushed RF = 0 until this test (found by
    test_singlestep_over_an_exception..., comparing the frames of both hosts)."""
    m = machine
    _skip_if_kvm_cannot(m, scenario)
    m.start_at(f"{scenario}_start")
    assert m.run() == C.KVM_EXIT_HLT
    fault = scenario in ("ud", "gp", "pf")
    assert m.u64("frame_rflags") == RFLAGS_FIXED_1 | (RFLAGS_RF if fault else 0)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_session_step_over_an_exception_then_continue_delivers_it_once(
    machine: Machine, scenario: str, request: pytest.FixtureRequest
) -> None:
    """Session.resume(step=True) from the instruction, with a host breakpoint at the end."""
    m = machine
    _skip_if_kvm_cannot(m, scenario)
    if m.kind == "kvm":
        request.applymarker(pytest.mark.xfail(strict=True, reason=TF_IN_FRAME))
    _, handler, _ = SCENARIOS[scenario]
    m.start_at(f"{scenario}_insn")
    if scenario == "gp":
        m.set_regs(rax=0x8000000000000000)
    elif scenario == "pf":
        m.set_regs(rax=UNMAPPED)
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym(f"{scenario}_done")))
        ev = run_to_stop(s, step=True)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.STEP, m.sym(f"{handler}_second"))
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym(f"{scenario}_done"))
        _assert_delivered_once(m, scenario)
        assert s.filter_stats().reinjected == 0  # nothing of the guest's went through userspace
    finally:
        s.close()


@pytest.mark.parametrize("point", [PointKind.HW_BREAK, PointKind.SW_BREAK])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_host_breakpoint_on_an_exception_then_continue_delivers_it_once(
    machine: Machine, scenario: str, point: PointKind, request: pytest.FixtureRequest
) -> None:
    """The breakpoint is reported once at the instruction; continuing steps over it, which
    raises the guest's exception: its handler runs once and the guest reaches the end."""
    m = machine
    _skip_if_kvm_cannot(m, scenario)
    if m.kind == "kvm" and point is PointKind.SW_BREAK:
        pytest.skip("this /dev/kvm cannot run int3 at CPL0: software breakpoints cannot fire")
    if m.kind == "kvm":  # the step over the breakpoint delivers the exception
        request.applymarker(pytest.mark.xfail(strict=True, reason=TF_IN_FRAME))
    m.start_at(f"{scenario}_start")
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(point, m.sym(f"{scenario}_insn")))
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym(f"{scenario}_done")))
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (point_stop(point), m.sym(f"{scenario}_insn"))
        vector = SCENARIOS[scenario][0]
        assert m.u64(f"count_{vector}") == 0
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym(f"{scenario}_done"))
        _assert_delivered_once(m, scenario)
        assert s.filter_stats().reported == 2
    finally:
        s.close()


def point_stop(point: PointKind) -> StopKind:
    return StopKind.HW_BREAK if point is PointKind.HW_BREAK else StopKind.SW_BREAK
