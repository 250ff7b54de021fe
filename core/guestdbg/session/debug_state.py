"""What the host debugger has set up in one VM: the state every vCPU's port reads.

The points (and the trap words in guest memory that serve some of them), whether a debugger is
attached, the ownership policy and the guest's own debug settings saved at attach, and the
counters the monitor shows. One object, handed to whoever needs it (the ports, the migration
document, the monitor), instead of a session they reach into.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..arch import OwnershipPolicy
from ..capabilities import DebugCapabilities
from ..errors import InvalidRequest, UnsupportedByArch
from ..points import Condition, DebugPoint, PointKind, PointTable, SwEntry
from ..vcpu import VcpuHandle
from . import traps
from .hits import PointStats
from .traps import TrapWriter
from .write_guard import TrapPageGuard

if TYPE_CHECKING:
    from ..gdb.target import GdbArch


@dataclass
class SessionStats:
    set_guest_debug_calls: int = 0
    injected: int = 0
    stops_reported: int = 0
    stops_dropped: int = 0
    trap_words_rewritten: int = 0
    """Trap words whose saved original a guest store replaced while they stayed armed."""
    executed_in_place: int = 0
    """Hits with a false condition the arch carried out the instruction of itself, no step
    (:class:`guestdbg.arch.ExecuteInPlace`)."""
    errors: list[str] = field(default_factory=list)


class DebugState:
    def __init__(
        self,
        caps: DebugCapabilities,
        trap_writer: TrapWriter,
        policy: str,
        vcpus: int,
        catch_guest_events: bool = False,
        core_name: str = "this core",
    ) -> None:
        self.caps = caps
        self.core_name = core_name
        self.points = PointTable(caps)
        self.trap_writer = trap_writer
        self.policy = policy
        self.catch_guest_events = catch_guest_events
        """Stop before each guest-owned event is re-injected (``monitor catch on``)."""
        self.attached = False
        self.saved_guest: list[Mapping[str, int]] = [{} for _ in range(vcpus)]
        """Per vCPU, the guest's own debug settings the arch saved at attach."""
        self.stats = SessionStats()
        self.conditions: dict[DebugPoint, Condition] = {}
        """Breakpoints that stop only when their condition holds (see :mod:`.hits`)."""
        self.point_stats: dict[DebugPoint, PointStats] = {}
        """Per point inserted since the debugger attached: hits, condition evaluations, stops
        (kept when the point is removed, cleared at detach)."""
        self.gdb_arch: Callable[[], GdbArch] = _no_arch
        """The register layout conditions read registers through (set by the session)."""
        self.guard: TrapPageGuard | None = None
        """Read-only slots over the pages holding trap words, where the kernel has them (set by
        the session; :mod:`.write_guard`)."""
        self.hw_served: set[tuple[str, int]] = set()
        """``(space, addr)`` where the user asked for software breakpoints to be served by a
        hardware instruction compare (``monitor hwbreak``, :mod:`.hw_optin`). Kept here, per
        address, not on a point: GDB removes every breakpoint at each stop and inserts it again
        to resume. Forgotten at detach."""
        self.unreported: list[str] = []
        """Notices for the debugger that happened while the VM ran (a VMM write re-armed a
        trap word); the next reported stop carries them."""
        self.rewrite_policy: str = "rearm"
        """What a stop does with a breakpoint whose word the guest rewrote (:mod:`.rewrites`):
        ``rearm`` the trap over the new word, or move it to a hardware compare (``hw``)."""

    def read_view(self, vcpu: VcpuHandle, addr: int, length: int) -> bytes:
        """Guest memory as the debugger sees it (trap words shadowed), through ``vcpu``."""
        if addr < 0 or length < 0:
            raise InvalidRequest("negative address or length")
        w = self.trap_writer
        return traps.shadow_read(self.points, w.vm, vcpu, addr, length, w.insn)

    @property
    def traps_active(self) -> bool:
        """True while any trap word is in guest memory (the arch then asks KVM to exit on it)."""
        return self.points.has_traps()

    # -- points -----------------------------------------------------------------------------

    def normalise(self, point: DebugPoint) -> DebugPoint:
        """GDB's breakpoint "kind" is a size hint: a trap is always the arch's trap word, and an
        instruction-address compare one of the lengths the arch's compares take (GDB's ``z1``
        need not repeat the kind its ``Z1`` gave, so both must land on the same point)."""
        caps = self.caps
        if point.kind is PointKind.SW_BREAK and (point.space, point.addr) in self.hw_served:
            # the user's opt-in: this address is served by an instruction compare
            point = DebugPoint(PointKind.HW_BREAK, point.addr, point.length, point.space)
        if self.needs_trap(point):
            length = caps.sw_break_size
        elif point.kind is PointKind.HW_BREAK and point.length not in caps.hw_break_lengths:
            length = caps.hw_break_lengths[0]
        else:
            return point
        return (
            point
            if point.length == length
            else DebugPoint(point.kind, point.addr, length, point.space)
        )

    def needs_trap(self, point: DebugPoint) -> bool:
        return point.kind is PointKind.SW_BREAK or (
            point.kind is PointKind.HW_BREAK and self.caps.hw_break_via_sw
        )

    def insert(
        self, point: DebugPoint, vcpu: VcpuHandle, condition: Condition | None = None
    ) -> None:
        """Add one reference to a point (its trap word written through ``vcpu``'s address
        translation); a refused point changes nothing. ``condition`` replaces the point's
        (None: it always stops)."""
        point = self.normalise(point)
        self._check_condition(point, condition)
        self._insert(point, vcpu)
        self.traps_changed()
        self.set_condition(point, condition)
        self.point_stats.setdefault(point, PointStats())

    def set_condition(self, point: DebugPoint, condition: Condition | None) -> None:
        """Replace an inserted breakpoint's condition (None: unconditional)."""
        point = self.normalise(point)
        self._check_condition(point, condition)
        if not self._known(point):
            raise InvalidRequest(f"{point} is not inserted")
        if condition is None:
            self.conditions.pop(point, None)
        else:
            self.conditions[point] = condition

    def _check_condition(self, point: DebugPoint, condition: Condition | None) -> None:
        if condition is None:
            return
        if point.kind.is_watch:
            raise InvalidRequest(f"{point}: conditions are for breakpoints, not watchpoints")
        if not callable(condition):
            raise InvalidRequest(f"a condition must be callable, not {condition!r}")
        if not self.caps.single_step or self.caps.step_via_sw:
            raise UnsupportedByArch(
                "breakpoint conditions need the host's single-step to let a vCPU past a false "
                "one, which this host does not give the debugger"
            )

    def _known(self, point: DebugPoint) -> bool:
        pts = self.points
        if point.kind is PointKind.SW_BREAK:
            return (point.space, point.addr) in pts.sw
        if point.kind is PointKind.HW_BREAK:
            return (point.space, point.addr) in pts.hw_breaks
        return any(e.point == point for e in pts.watches.values())

    def _insert(self, point: DebugPoint, vcpu: VcpuHandle) -> None:
        if point.kind.is_watch and not self.caps.watch_kinds:
            raise UnsupportedByArch(
                f"no hardware watchpoints for the host under the {self.policy} policy: the "
                "guest keeps its data-address compares"
                if self.policy != OwnershipPolicy.HOST_PRIORITY
                else f"{self.core_name} offers no hardware watchpoints"
            )
        self.points.check(point)
        if not self.needs_trap(point) or self._trap_entry_for(point) is not None:
            self.points.insert(point)
            return
        shared = self.points.trap_at(point.space, point.addr)  # a hbreak served by the same word
        probe = SwEntry(point)
        if shared is not None and shared.inserted:
            probe.original, probe.gpa, probe.inserted = shared.original, shared.gpa, True
        else:
            self.trap_writer.insert(vcpu, probe)  # BadAddress: nothing written
        self.points.insert(point)
        entry = self._trap_entry_for(point)
        assert entry is not None
        entry.original, entry.gpa, entry.inserted = probe.original, probe.gpa, True

    def _trap_entry_for(self, point: DebugPoint) -> SwEntry | None:
        if point.kind is PointKind.SW_BREAK:
            return self.points.sw.get((point.space, point.addr))
        if point.kind is PointKind.HW_BREAK:
            hw = self.points.hw_breaks.get((point.space, point.addr))
            return hw.trap if hw is not None else None
        return None

    def traps_changed(self) -> None:
        """Tell the write guard which pages hold trap words now (it reshapes slots lazily)."""
        if self.guard is not None:
            self.guard.want(e.gpa for e in self.points.traps() if e.inserted)

    def remove(self, point: DebugPoint) -> str | None:
        """Remove one reference; returns a note when a trap word could not be restored."""
        note = self._remove(point)
        self.traps_changed()
        return note

    def _remove(self, point: DebugPoint) -> str | None:
        point = self.normalise(point)
        gone = self.points.remove(point)
        if gone is None:
            return None
        self.conditions.pop(point, None)  # its counters stay: GDB removes every point at
        # each stop and inserts them again to resume, and the counts are for the whole attach
        entry = gone if isinstance(gone, SwEntry) else gone.trap
        if entry is None:
            return None
        other = self.points.trap_at(entry.point.space, entry.point.addr)
        if other is not None and other.inserted:
            entry.inserted = False  # the word stays: another point still traps there
            return None
        return self.trap_writer.remove(entry)

    def remove_all(self) -> None:
        """Every trap word back to the guest's, every point gone (detach)."""
        for entry in list(self.points.traps()):
            self.trap_writer.remove(entry)
        self.points.clear()
        self.conditions.clear()
        self.point_stats.clear()
        self.hw_served.clear()
        self.traps_changed()


def _no_arch() -> GdbArch:
    raise InvalidRequest("no register layout for conditions in this session")
