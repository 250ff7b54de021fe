"""The x86 plugin's per-vCPU debug operations against a live vCPU (either host).

Conformance with QEMU's ``kvm_arch_update_guest_debug`` for the DR7 image, with the kernel for
what it reports (BLOCKIRQ, EXCEPTION_PAYLOAD), and the decisions the reinjection filter relies
on: the slot kind comes from the DR7 this vCPU was given (kvm_pvm reports ``dr7 = 0``), a hit in
a slot whose point is gone is dropped rather than shown to the guest, and an injected #DB
carries the DR6 the guest's handler then reads, with and without the payload capability.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from guestdbg import plugins
from guestdbg.arch import OwnershipPolicy, VcpuDebugRequest
from guestdbg.errors import GuestDebugError, UnsupportedByArch
from guestdbg.events import EventKind, Reinject, Resume
from guestdbg.filter import ReinjectionFilter
from guestdbg.kvm import constants as C
from guestdbg.numbering import ExceptionId
from guestdbg.points import DebugPoint, PointKind, PointTable
from guestdbg.session.session import Session
from guestdbg.vcpu import VcpuEventsHandle
from guestdbg_x86 import abi, numbering
from guestdbg_x86.debugops import X86VcpuDebug

from . import machines
from .machines import Machine

MakeMachine = Callable[[str], Machine]
DR6_ACTIVE_LOW, DR6_BS = 0xFFFF0FF0, 0x4000
NO_BLOCKIRQ = 0x000F0003
"""KVM_GUESTDBG_VALID_MASK of a kernel from before BLOCKIRQ (Linux 5.15)."""


def _ops(m: Machine, **options: object) -> X86VcpuDebug:
    reg = plugins.load()
    info = reg.arches["x86"]
    ops = reg.vcpu_debug(VcpuDebugRequest(info, info.core(None), m.vm, m.vcpu, options=options))
    assert isinstance(ops, X86VcpuDebug)
    return ops


def _field(buf: bytes, *path: str | int) -> int:
    return int(machines.LAYOUT.field("struct kvm_guest_debug", *path).get(buf))


def test_dr7_is_built_exactly_as_qemu_builds_it(make_machine: MakeMachine) -> None:
    """kvm_arch_update_guest_debug: 0x600, then per slot n Gn, RW at 16+4n, LEN at 18+4n with
    lengths 1->00, 2->01, 4->11, 8->10; execute breakpoints are length 1."""
    m = make_machine("reinject")
    ops = _ops(m)
    points = [
        DebugPoint(PointKind.HW_BREAK, 0x10001),
        DebugPoint(PointKind.WATCH_WRITE, 0x13000, 4),
        DebugPoint(PointKind.WATCH_ACCESS, 0x13008, 8),
        DebugPoint(PointKind.WATCH_WRITE, 0x13010, 2),
    ]
    dbg = ops.encode_guest_debug(points, step=False, sw_breaks=False)
    g = [0b10 << 2 * n for n in range(4)]  # G0..G3
    rw_len = [0b00_00, 0b11_01, 0b10_11, 0b01_01]  # LEN:RW per slot
    expected_dr7 = 0x600 | sum(g) | sum(v << (16 + 4 * n) for n, v in enumerate(rw_len))
    assert _field(dbg, "arch", "debugreg", 7) == expected_dr7
    assert [_field(dbg, "arch", "debugreg", n) for n in range(4)] == [p.addr for p in points]
    assert _field(dbg, "control") == C.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
    off = ops.encode_guest_debug([], step=False, sw_breaks=False)
    assert off == bytes(len(off))  # all-zero control turns guest debugging off


@pytest.mark.parametrize("mask", [None, NO_BLOCKIRQ], ids=["kernel-with-blockirq", "older"])
def test_a_step_holds_interrupts_off_only_where_the_kernel_offers_blockirq(
    x86_guests: Callable[[str], pathlib.Path], mask: int | None
) -> None:
    caps = {} if mask is None else {C.KVM_CAP_SET_GUEST_DEBUG2: mask}
    m = machines.emulated(x86_guests("reinject"), kernel_caps=caps)
    ops = _ops(m)
    offered = bool(m.vm.check_extension(C.KVM_CAP_SET_GUEST_DEBUG2) & abi.KVM_GUESTDBG_BLOCKIRQ)
    assert ops.caps.step_blocks_irqs is offered
    control = _field(ops.encode_guest_debug([], step=True, sw_breaks=True), "control")
    assert bool(control & abi.KVM_GUESTDBG_BLOCKIRQ) is offered
    assert control & C.KVM_GUESTDBG_SINGLESTEP and control & abi.KVM_GUESTDBG_USE_SW_BP


def test_exception_payload_is_enabled_on_the_vm_where_the_kernel_has_it(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("reinject")
    ops = _ops(m)
    assert ops.payload_enabled is (m.vm.check_extension(C.KVM_CAP_EXCEPTION_PAYLOAD) > 0)
    if m.kind == "emulated":
        assert m.vm.payload_enabled is ops.payload_enabled  # type: ignore[attr-defined]


def test_a_hit_in_a_slot_whose_point_is_gone_is_dropped_not_shown_to_the_guest(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("reinject")
    m.start_at("watch_start")
    ops = _ops(m)
    point = DebugPoint(PointKind.HW_BREAK, m.sym("watch_after_store"))
    m.vcpu.set_guest_debug(ops.encode_guest_debug([point], False, False))
    assert m.run() == C.KVM_EXIT_DEBUG
    ev = ops.decode_exit(m.vcpu.kvm_run)
    assert (ev.kind, ev.address) == (EventKind.HW_BREAK, point.addr)
    verdict = ReinjectionFilter(PointTable(ops.caps), ops.guest_verdict).decide(ev, False)
    assert isinstance(verdict, Resume)  # the table no longer has it: not the guest's either


def test_the_slot_kind_comes_from_the_dr7_the_vcpu_was_given(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """kvm_pvm reports dr7 = 0 in every debug exit; decoding must not read it."""
    m = machines.emulated(x86_guests("reinject"))
    m.start_at("watch_start")
    ops = _ops(m)
    watch = DebugPoint(PointKind.WATCH_WRITE, m.sym("watched"), 4)
    m.vcpu.set_guest_debug(ops.encode_guest_debug([watch], False, False))
    assert m.run() == C.KVM_EXIT_DEBUG
    machines.LAYOUT.field("struct kvm_run", "debug", "arch", "dr7").put(m.vcpu.kvm_run, 0)
    ev = ops.decode_exit(m.vcpu.kvm_run)
    assert (ev.kind, ev.access, ev.address) == (EventKind.WATCH, watch.kind, watch.addr)
    assert ev.pc == m.sym("watch_after_store")


def test_a_state_encoded_again_decodes_with_its_own_slots(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """A hit passed by a single step switches between two states and back; the state given
    last is the one a debug exit is decoded with, whether it was encoded before or not."""
    m = machines.emulated(x86_guests("reinject"))
    m.start_at("watch_start")
    ops = _ops(m)
    watch = DebugPoint(PointKind.WATCH_WRITE, m.sym("watched"), 4)
    first = ops.encode_guest_debug([watch], False, False)
    other = ops.encode_guest_debug([DebugPoint(PointKind.HW_BREAK, m.sym("bp_done"))], True, False)
    assert _field(other, "arch", "debugreg", 7) & 0x30000 == 0  # DR0 now an execute slot
    again = ops.encode_guest_debug([watch], False, False)
    assert again == first
    m.vcpu.set_guest_debug(again)
    assert m.run() == C.KVM_EXIT_DEBUG
    ev = ops.decode_exit(m.vcpu.kvm_run)
    assert (ev.kind, ev.access, ev.address) == (EventKind.WATCH, watch.kind, watch.addr)


@pytest.mark.parametrize("payload", [True, False], ids=["exception-payload", "set-debugregs"])
def test_an_injected_db_reaches_the_guests_handler_with_its_dr6(
    make_machine: MakeMachine, payload: bool
) -> None:
    m = make_machine("reinject")
    m.start_at("tf_done")
    ops = _ops(m, exception_payload=payload)
    # what the guest's handler must read: B2 and BS on top of the reset value
    dr6 = DR6_ACTIVE_LOW | DR6_BS | 0x4
    ops.inject(Reinject(numbering.DB, m.sym("tf_done"), {"dr6": dr6}))
    assert m.run() == C.KVM_EXIT_HLT
    assert m.u64("db_count") == 1
    assert m.u64("db_dr6") == dr6
    assert m.u64("db_frame_rip") == m.sym("tf_done")


def test_a_second_exception_is_not_stacked_on_a_queued_one(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    m.start_at("tf_done")
    ops = _ops(m)
    ops.inject(Reinject(numbering.DB, m.sym("tf_done"), {"dr6": DR6_ACTIVE_LOW | DR6_BS}))
    events = bytes(m.vcpu.get_vcpu_events())  # type: ignore[attr-defined]
    dregs = ops.dregs.read()
    with pytest.raises(GuestDebugError, match="already has exception 1 queued"):
        ops.inject(Reinject(numbering.DB, m.sym("tf_done"), {"dr6": DR6_ACTIVE_LOW}))
    assert bytes(m.vcpu.get_vcpu_events()) == events  # type: ignore[attr-defined]
    assert ops.dregs.read() == dregs


def test_only_the_host_priority_policy_is_offered(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    with pytest.raises(UnsupportedByArch, match="host-priority"):
        Session(m.vm, "x86", policy=OwnershipPolicy.GUEST_PRIORITY)


@pytest.mark.parametrize("vector", [2, 32])
def test_an_injected_vector_must_be_an_x86_exception_other_than_nmi(
    make_machine: MakeMachine, vector: int
) -> None:
    m = make_machine("reinject")
    ops = _ops(m)
    events = bytes(m.vcpu.get_vcpu_events())  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedByArch, match="0-31 except NMI"):
        ops.inject(Reinject(ExceptionId(numbering.VECTOR, vector), 0))
    assert bytes(m.vcpu.get_vcpu_events()) == events  # type: ignore[attr-defined]


class _NoEvents:
    """A VMM's vCPU handle with only the VcpuHandle calls (no KVM_GET/SET_VCPU_EVENTS)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.vcpu_id = inner.vcpu_id
        self.kvm_run = inner.kvm_run
        for name in ("run", "kick", "set_guest_debug", "get_regs", "set_regs", "get_sregs",
                     "set_sregs", "get_one_reg", "set_one_reg", "translate"):  # fmt: skip
            setattr(self, name, getattr(inner, name))


def test_a_vcpu_without_vcpu_events_is_refused_at_setup_with_the_reason(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("reinject")
    reg = plugins.load()
    arch, core = reg.resolve("x86")
    bare = _NoEvents(m.vcpu)
    assert not isinstance(bare, VcpuEventsHandle)
    with pytest.raises(UnsupportedByArch, match=r"KVM_GET/SET_VCPU_EVENTS.*handed back"):
        reg.vcpu_debug(VcpuDebugRequest(arch, core, m.vm, bare))  # type: ignore[arg-type]
