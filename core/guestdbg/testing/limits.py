"""Check 3: requests beyond the arch's limits are refused with the documented error, and the
refusal changes nothing: not the point table, not guest memory, not the ``kvm_guest_debug``
the vCPU would be given.

The documented errors (``guestdbg.errors``, ``guestdbg.points``): NoFreeSlot when every
hardware slot is taken, UnsupportedByArch for a watch kind or length the caps do not offer,
BadAddress for a software breakpoint where there is no guest memory, InvalidRequest for the
removal of a point that was never inserted (GDB's ``z`` for an unknown point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..errors import BadAddress, GuestDebugError, InvalidRequest, NoFreeSlot, UnsupportedByArch
from ..events import StopKind
from ..points import WATCH_KINDS, DebugPoint, PointKind
from ..session.session import Session
from .profile import ConformanceProfile
from .roundtrip import point_specs
from .sessions import STOP_TIMEOUT, run_to_stop

_PROBE = 16
"""Bytes of guest memory compared at each profile address."""


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must leave exactly as it was."""

    points: tuple[tuple[str, int], ...]
    memory: tuple[bytes, ...]
    guest_debug: tuple[bytes | None, ...]


def snapshot(session: Session, profile: ConformanceProfile) -> Snapshot:
    pts = session.points
    table = [(str(e.point), e.refs) for e in pts.sw.values()]
    table += [(str(e.point), e.refs) for e in pts.hw_breaks.values()]
    table += [(str(e.point), e.refs) for e in pts.watches.values()]
    vcpu = session.vm.vcpus[0]
    memory = []
    for addr in [*profile.code_addrs, profile.data_addr]:
        gpa = vcpu.translate(addr)
        memory.append(b"" if gpa is None else session.vm.read_phys(gpa, _PROBE))
    encoded = tuple(
        ops.encode_guest_debug(pts.hw_points(), False, session.traps_active) for ops in session.ops
    )
    return Snapshot(tuple(sorted(table)), tuple(memory), encoded)


def check_refused(
    session: Session,
    profile: ConformanceProfile,
    what: str,
    call: Callable[[], object],
    documented: type[GuestDebugError],
) -> None:
    before = snapshot(session, profile)
    try:
        call()
    except documented:
        pass
    except GuestDebugError as e:
        raise AssertionError(
            f"{what}: raised {type(e).__name__} ({e}); the documented error is "
            f"{documented.__name__}"
        ) from e
    else:
        raise AssertionError(f"{what} was accepted; it must raise {documented.__name__}")
    after = snapshot(session, profile)
    assert after.points == before.points, (
        f"{what} was refused but changed the point table: {before.points} -> {after.points}"
    )
    assert after.memory == before.memory, f"{what} was refused but changed guest memory"
    assert after.guest_debug == before.guest_debug, (
        f"{what} was refused but changed the kvm_guest_debug the vCPU would be given"
    )


def check_one_break_too_many(
    session: Session, profile: ConformanceProfile, timeout: float = STOP_TIMEOUT
) -> str | None:
    """Fill every breakpoint slot, refuse one more, and still stop at an armed one.
    Returns why the check does not apply (breakpoints served by traps have no slot limit)."""
    caps = session.caps
    if caps.hw_break_via_sw:
        return "hardware breakpoints are served by trap words here: there is no slot to run out of"
    length = caps.hw_break_lengths[0]
    armed = [DebugPoint(PointKind.HW_BREAK, a, length) for a in profile.code_addrs]
    n = caps.hw_breakpoints
    for p in armed[:n]:
        session.insert_point(p)
    documented = NoFreeSlot if n else UnsupportedByArch
    what = f"hardware breakpoint {n + 1} of {n}"
    check_refused(session, profile, what, partial(session.insert_point, armed[n]), documented)
    if n:
        ev = run_to_stop(session, timeout)
        hit = (ev.reason.kind, ev.reason.pc)
        assert hit in {(StopKind.HW_BREAK, p.addr) for p in armed[:n]}, (
            f"after the refusal the guest stopped with {hit[0].value} at {hit[1]:#x}, not at "
            f"one of the {n} armed hardware breakpoints"
        )
    return None


def check_watch_not_offered(session: Session, profile: ConformanceProfile) -> None:
    caps = session.caps
    if caps.watch_kinds:
        kind = next(s.kind for s in point_specs(caps) if s.kind.is_watch)
        session.insert_point(DebugPoint(kind, profile.data_addr, caps.watch_lengths[0]))
        largest = max(caps.watch_lengths)
        for bad in sorted({3, largest * 2} - set(caps.watch_lengths)):
            point = DebugPoint(kind, profile.data_addr, bad)
            what = f"a {bad}-byte {kind.value}"
            check_refused(
                session, profile, what, partial(session.insert_point, point), UnsupportedByArch
            )
    length = max(caps.watch_lengths, default=4)
    for kind in sorted(WATCH_KINDS - caps.watch_kinds, key=lambda k: k.value):
        point = DebugPoint(kind, profile.data_addr, length)
        what = f"a {kind.value} watchpoint"
        check_refused(
            session, profile, what, partial(session.insert_point, point), UnsupportedByArch
        )


def check_break_outside_ram(session: Session, profile: ConformanceProfile) -> None:
    caps = session.caps
    session.insert_point(DebugPoint(PointKind.SW_BREAK, profile.code_addrs[0], caps.sw_break_size))
    point = DebugPoint(PointKind.SW_BREAK, profile.outside_ram, caps.sw_break_size)
    check_refused(
        session, profile, f"a software breakpoint outside RAM ({point})",
        partial(session.insert_point, point), BadAddress,
    )  # fmt: skip


def check_unknown_removal(session: Session, profile: ConformanceProfile) -> None:
    caps = session.caps
    session.insert_point(DebugPoint(PointKind.SW_BREAK, profile.code_addrs[0], caps.sw_break_size))
    for spec in point_specs(caps):
        addr = profile.data_addr if spec.kind.is_watch else profile.code_addrs[1]
        point = DebugPoint(spec.kind, addr, spec.length)
        check_refused(
            session, profile, f"removing {point}, never inserted",
            partial(session.remove_point, point), InvalidRequest,
        )  # fmt: skip
