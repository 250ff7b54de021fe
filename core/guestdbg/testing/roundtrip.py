"""Check 2: every point kind the caps allow goes through the kernel and back.

A point is inserted through the session, the guest runs, and the stop must name the point's
kind and place: that is the plugin's ``encode_guest_debug`` as the VM's KVM_SET_GUEST_DEBUG
applied it, and ``decode_exit`` reading the KVM_EXIT_DEBUG it caused. After removal the guest
must run a whole lap of its loop without stopping there: a sentinel software breakpoint at the
loop's last address is hit twice, and everything the loop does happens between the two hits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capabilities import DebugCapabilities
from ..events import StopKind, stop_for_watch
from ..points import DebugPoint, PointKind
from ..session.session import Session
from .profile import ConformanceProfile
from .sessions import STOP_TIMEOUT, run_to_stop

_WATCH_ORDER = (PointKind.WATCH_WRITE, PointKind.WATCH_READ, PointKind.WATCH_ACCESS)


@dataclass(frozen=True)
class PointSpec:
    """A point kind and length, before the profile gives it an address."""

    kind: PointKind
    length: int

    def __str__(self) -> str:
        return f"{self.kind.value}/{self.length}"


def point_specs(caps: DebugCapabilities) -> list[PointSpec]:
    """Software break, each hardware-break length, each watch kind x each watch length."""
    specs = [PointSpec(PointKind.SW_BREAK, caps.sw_break_size)]
    if caps.hw_breakpoints or caps.hw_break_via_sw:
        specs += [PointSpec(PointKind.HW_BREAK, n) for n in caps.hw_break_lengths]
    for kind in _WATCH_ORDER:
        if kind in caps.watch_kinds:
            specs += [PointSpec(kind, n) for n in caps.watch_lengths]
    return specs


def point_for(spec: PointSpec, profile: ConformanceProfile) -> DebugPoint:
    addr = profile.data_addr if spec.kind.is_watch else profile.code_addrs[0]
    return DebugPoint(spec.kind, addr, spec.length)


def expected_stop(point: DebugPoint) -> StopKind:
    if point.kind is PointKind.SW_BREAK:
        return StopKind.SW_BREAK
    if point.kind is PointKind.HW_BREAK:
        return StopKind.HW_BREAK
    return stop_for_watch(point.kind)


def check_stops_at(session: Session, point: DebugPoint, timeout: float = STOP_TIMEOUT) -> None:
    ev = run_to_stop(session, timeout)
    want = expected_stop(point)
    where = ev.reason.address if point.kind.is_watch else ev.reason.pc
    where_text = "None" if where is None else hex(where)
    assert (ev.vcpu, ev.reason.kind, where) == (0, want, point.addr), (
        f"{point}: expected a {want.value} stop of vCPU 0 at {point.addr:#x}, got a "
        f"{ev.reason.kind.value} stop of vCPU {ev.vcpu} at {where_text} (pc {ev.reason.pc:#x})"
    )


def check_no_longer_stops(
    session: Session, profile: ConformanceProfile, removed: object, timeout: float = STOP_TIMEOUT
) -> None:
    sentinel = DebugPoint(PointKind.SW_BREAK, profile.code_addrs[-1], session.caps.sw_break_size)
    session.insert_point(sentinel)
    for lap in ("reaching", "a whole lap back to"):
        ev = run_to_stop(session, timeout)
        assert (ev.reason.kind, ev.reason.pc) == (StopKind.SW_BREAK, sentinel.addr), (
            f"after removing {removed}, {lap} the sentinel {sentinel} the guest stopped with "
            f"{ev.reason.kind.value} at pc {ev.reason.pc:#x} (address {ev.reason.address})"
        )
    session.remove_point(sentinel)


def check_round_trip(
    session: Session,
    profile: ConformanceProfile,
    spec: PointSpec,
    timeout: float = STOP_TIMEOUT,
) -> None:
    point = point_for(spec, profile)
    session.insert_point(point)
    check_stops_at(session, point, timeout)
    session.remove_point(point)
    check_no_longer_stops(session, profile, point, timeout)
