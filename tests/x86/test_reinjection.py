"""The guest's own #BP and #DB go back to the guest, once, as the hardware delivers them, while a
debug session holds the vCPU (``tests/guests/x86/reinject.S``, through ``Session(vm, "x86")``).

Where a host cannot produce an event the kernel path is found by trying: on the kvm_pvm
/dev/kvm the guest's int3 ends in KVM_EXIT_INTERNAL_ERROR (skip), and the guest's own TF #DB is
queued to the guest by the kernel itself (x86.c ``kvm_vcpu_do_singlestep``) instead of reaching
userspace - the guest must still see it exactly once with its DR6, which is what is asserted.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import pytest

from guestdbg.events import StopKind
from guestdbg.kvm import constants as C
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session

from . import machines
from .machines import Machine
from .sessions import halted, run_to_stop

DR6_ACTIVE_LOW, DR6_BS = 0xFFFF0FF0, 0x4000
MakeMachine = Callable[[str], Machine]


def _exit_reason(m: Machine) -> int:
    return int(machines.LAYOUT.field("struct kvm_run", "exit_reason").get(m.vcpu.kvm_run))


def test_guest_int3_runs_its_own_handler_once_with_rip_past_the_int3(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("reinject")
    m.start_at("bp_start")
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("bp_done")))  # USE_SW_BP is on
        ev = run_to_stop(s)
        if m.kind == "kvm" and halted(ev) and _exit_reason(m) == C.KVM_EXIT_INTERNAL_ERROR:
            pytest.skip("this /dev/kvm (kvm_pvm) cannot run int3 at CPL0: internal error")
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, m.sym("bp_done"))
        assert m.u64("bp_count") == 1
        assert m.u64("bp_frame_rip") == m.sym("bp_after_int3")  # RIP past the int3
        assert s.filter_stats().reinjected == 1
    finally:
        s.close()


def test_host_breakpoint_on_the_guests_own_int3_reports_once_then_the_guest_gets_its_bp(
    make_machine: MakeMachine,
) -> None:
    """GDB's breakpoint on an int3 the guest itself executes: the first #BP there is the host's
    (reported). Continuing steps over it with the original byte back - which is the guest's
    int3 - so the #BP of that step is the guest's and goes to its handler; claiming it as the
    host's again would report the same breakpoint on every continue, for ever."""
    m = make_machine("reinject")
    m.start_at("bp_start")
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("guest_int3")))
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("bp_done")))
        ev = run_to_stop(s)
        if m.kind == "kvm" and halted(ev) and _exit_reason(m) == C.KVM_EXIT_INTERNAL_ERROR:
            pytest.skip("this /dev/kvm (kvm_pvm) cannot run int3 at CPL0: internal error")
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, m.sym("guest_int3"))
        assert m.u64("bp_count") == 0
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, m.sym("bp_done"))
        assert m.u64("bp_count") == 1
        assert m.u64("bp_frame_rip") == m.sym("bp_after_int3")
        assert (s.filter_stats().reported, s.filter_stats().reinjected) == (2, 1)
    finally:
        s.close()


def test_guest_single_step_db_reaches_its_handler_once_with_dr6_bs(
    make_machine: MakeMachine,
) -> None:
    """A host hardware breakpoint elsewhere makes KVM intercept #DB (USE_HW_BP)."""
    m = make_machine("reinject")
    m.start_at("tf_start")
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("tf_done")))
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, m.sym("tf_done"))
        assert m.u64("db_count") == 1
        assert m.u64("db_dr6") == DR6_ACTIVE_LOW | DR6_BS
        assert m.u64("db_frame_rip") == m.sym("tf_after")  # a trap after tf_target
        assert s.filter_stats().reported == 1
    finally:
        s.close()


@pytest.mark.parametrize("payload_cap", [1, 0], ids=["exception-payload", "set-debugregs"])
def test_reinjected_db_carries_its_dr6_into_the_guest(
    x86_guests: Callable[[str], pathlib.Path], payload_cap: int
) -> None:
    """Emulated host, where the guest's TF #DB exits to userspace as on VMX: the plugin
    re-injects it with KVM_CAP_EXCEPTION_PAYLOAD, or - on a kernel without it - writes DR6
    with KVM_SET_DEBUGREGS first; the guest's handler reads the same DR6 either way."""
    elf = x86_guests("reinject")
    m = machines.emulated(elf, kernel_caps={C.KVM_CAP_EXCEPTION_PAYLOAD: payload_cap})
    m.start_at("tf_start")
    s = Session(m.vm, "x86")
    try:
        assert s.ops[0].payload_enabled is bool(payload_cap)  # type: ignore[attr-defined]
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("tf_done")))
        ev = run_to_stop(s)
        assert ev.reason.kind is StopKind.HW_BREAK
        assert s.filter_stats().reinjected == 1
        assert m.u64("db_dr6") == DR6_ACTIVE_LOW | DR6_BS
        assert m.u64("db_count") == 1
    finally:
        s.close()


def test_host_step_over_the_guests_int3_lands_in_the_guests_handler(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """A host single-step must not swallow the exception the stepped instruction raises
    (docs/stepping.md)."""
    m = machines.emulated(x86_guests("reinject"))
    m.start_at("guest_int3")
    s = Session(m.vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("bp_done")))
        ev = run_to_stop(s, step=True)
        assert ev.reason.kind is StopKind.STEP
        handler = m.sym("bp_handler")
        assert handler < ev.reason.pc < handler + 8  # one instruction into the handler
        assert m.u64("bp_frame_rip") == 0  # the handler has not stored it yet
        ev = run_to_stop(s)
        assert ev.reason.pc == m.sym("bp_done")
        assert m.u64("bp_count") == 1
        assert m.u64("bp_frame_rip") == m.sym("bp_after_int3")
    finally:
        s.close()


# -- the pending reinjection is part of the migration document --------------------------------


def _caught(m: Machine, start: str, point: DebugPoint) -> tuple[Session, dict[str, object]]:
    m.start_at(start)
    s = Session(m.vm, "x86", catch_guest_events=True)
    s.insert_point(point)
    ev = run_to_stop(s)
    assert ev.reason.kind is StopKind.GUEST_EVENT
    doc = json.loads(json.dumps(s.save_state()))
    return s, doc


def test_pending_db_travels_in_the_migration_document_and_is_delivered_once(
    x86_guests: Callable[[str], pathlib.Path], host_kind: str
) -> None:
    """Caught on the emulated host, restored on either host: the destination delivers the
    pending #DB (its DR6 from the document) before its first KVM_RUN."""
    elf = x86_guests("reinject")
    src = machines.emulated(elf)
    stop_at = DebugPoint(PointKind.HW_BREAK, src.sym("tf_done"))
    s, doc = _caught(src, "tf_start", stop_at)
    s.close()
    (pending,) = (v["pending"] for v in doc["vcpus"])  # type: ignore[attr-defined]
    assert pending["exception"] == {"space": "x86.vector", "number": 1}
    assert pending["payload"] == {"dr6": DR6_ACTIVE_LOW | DR6_BS}
    assert src.u64("db_count") == 0  # not delivered on the source
    dst = machines.emulated(elf) if host_kind == "emulated" else machines.real(elf)
    try:
        machines.copy_state(src, dst)
        restored = Session.restore(dst.vm, doc)
        try:
            restored.catch_guest_events = False
            ev = run_to_stop(restored)
            assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, dst.sym("tf_done"))
            assert dst.u64("db_count") == 1
            assert dst.u64("db_dr6") == DR6_ACTIVE_LOW | DR6_BS
            assert dst.u64("db_frame_rip") == dst.sym("tf_after")
        finally:
            restored.close()
    finally:
        dst.close()


def test_pending_bp_travels_in_the_migration_document_and_the_handler_runs_once(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """The destination kernel does not hold the int3's length (VMX saves it at the exit), so
    nothing is injected there: RIP stays at the int3, which traps again and is then
    re-injected with the length known - the handler still runs exactly once."""
    elf = x86_guests("reinject")
    src = machines.emulated(elf)
    s, doc = _caught(src, "bp_start", DebugPoint(PointKind.SW_BREAK, src.sym("bp_done")))
    s.close()
    assert doc["vcpus"][0]["pending"]["exception"]["number"] == 3  # type: ignore[index]
    assert src.reg("rip") == src.sym("guest_int3")
    dst = machines.emulated(elf)
    machines.copy_state(src, dst)
    restored = Session.restore(dst.vm, doc)
    try:
        restored.catch_guest_events = False
        ev = run_to_stop(restored)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, dst.sym("bp_done"))
        assert dst.u64("bp_count") == 1
        assert dst.u64("bp_frame_rip") == dst.sym("bp_after_int3")
    finally:
        restored.close()
