"""Check 6: the guest's own debug events go back to the guest as the plugin documents.

Each :class:`GuestEventCase` is the ``kvm_run`` image the kernel writes for one of the guest's
own events. Decoded by the plugin and judged by the reinjection filter with no host point, it
must be re-injected as the documented exception (or, where the plugin documents the event as
nobody's, dropped with a reason); with a host point claiming it (or the host stepping, for a
step) it is the host's and must be reported instead; and a re-injection must be deliverable
into a live vCPU (``inject``).
"""

from __future__ import annotations

from ..arch import ArchVcpuDebug
from ..events import DebugEvent, EventKind, Reinject, Report, Resume
from ..filter import ReinjectionFilter
from ..kvm.constants import KVM_EXIT_DEBUG
from ..kvm.uapi import AbiLayout
from ..numbering import EquivalenceTable
from ..points import DebugPoint, PointKind, PointTable
from .profile import GuestEventCase


def decode_case(ops: ArchVcpuDebug, layout: AbiLayout, case: GuestEventCase) -> DebugEvent:
    image = bytearray(case.kvm_run(layout))
    size = layout.sizeof("struct kvm_run")
    assert len(image) >= size, f"{case.name}: the kvm_run image is {len(image)} bytes, not {size}"
    reason = layout.field("struct kvm_run", "exit_reason").get(image)
    assert reason == KVM_EXIT_DEBUG, f"{case.name}: exit_reason {reason}, not KVM_EXIT_DEBUG"
    return ops.decode_exit(memoryview(image))


def check_dropped(ops: ArchVcpuDebug, case: GuestEventCase, ev: DebugEvent) -> Resume:
    """A case documented as nobody's: no host point, and the filter drops it, saying why."""
    verdict = ReinjectionFilter(PointTable(ops.caps), ops.guest_verdict).decide(ev, False)
    assert isinstance(verdict, Resume), (
        f"{case.name}: documented as dropped, but decoded as {ev.kind.value} at "
        f"{ev.address:#x} the filter's verdict with no host point is {verdict}"
    )
    assert verdict.why.strip(), f"{case.name}: dropped without saying why"
    return verdict


def check_reinjected(
    ops: ArchVcpuDebug, table: EquivalenceTable, case: GuestEventCase, ev: DebugEvent
) -> Reinject:
    assert case.expected is not None, f"{case.name}: documented as dropped, not re-injected"
    assert table.known(case.expected), (
        f"{case.name}: the expected {case.expected} is not in the arch's numberspaces"
    )
    verdict = ReinjectionFilter(PointTable(ops.caps), ops.guest_verdict).decide(ev, False)
    assert isinstance(verdict, Reinject), (
        f"{case.name}: decoded as {ev.kind.value} at {ev.address:#x}, the filter's verdict with "
        f"no host point is {verdict}, not a reinjection of {table.describe(case.expected)}"
    )
    assert verdict.exception == case.expected, (
        f"{case.name}: re-injects {table.describe(verdict.exception)}, the documented "
        f"exception is {table.describe(case.expected)}"
    )
    return verdict


def host_claim(ops: ArchVcpuDebug, ev: DebugEvent) -> tuple[PointTable, bool] | None:
    """The host state that makes ``ev`` the host's: a point at its address, or a host step."""
    caps = ops.caps
    table = PointTable(caps)
    if ev.kind in (EventKind.SW_TRAP, EventKind.STEP_OR_SW_TRAP):
        table.insert(DebugPoint(PointKind.SW_BREAK, ev.address, caps.sw_break_size, ev.space))
        return table, False
    if ev.kind is EventKind.HW_BREAK and caps.hw_breakpoints:
        table.insert(DebugPoint(PointKind.HW_BREAK, ev.address, caps.hw_break_lengths[0], ev.space))
        return table, False
    if ev.kind is EventKind.WATCH and ev.access in caps.watch_kinds:
        assert ev.access is not None
        table.insert(DebugPoint(ev.access, ev.address, min(caps.watch_lengths), ev.space))
        return table, False
    if ev.kind is EventKind.STEP:
        return table, True
    return None


def check_claimed(ops: ArchVcpuDebug, case: GuestEventCase, ev: DebugEvent) -> bool:
    """False when no host state can claim an event of this kind (nothing to check)."""
    claim = host_claim(ops, ev)
    if claim is None:
        return False
    table, stepping = claim
    verdict = ReinjectionFilter(table, ops.guest_verdict).decide(ev, stepping)
    how = "the host stepping" if stepping else f"a host point at {ev.address:#x}"
    assert isinstance(verdict, Report), (
        f"{case.name}: with {how} the verdict is {verdict}, not a report to the debugger"
    )
    return True
