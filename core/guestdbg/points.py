"""Debug points the host debugger asked for, and the table the exit path looks them up in.

The table is bookkeeping only: it never touches guest memory or a vCPU. It answers three
questions fast, because they are asked on every debug exit: is there a software breakpoint at
this address, a hardware breakpoint, a watchpoint? Each is one dict look-up keyed by
``(address space, address)``. GDB inserts the same point twice (e.g. once per thread after a
reconnect), so entries are reference-counted and only the first insert and the last remove change
what is armed. Hardware slots are checked against the arch's :class:`DebugCapabilities` before
anything is recorded, so a refused insert leaves the table exactly as it was.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .errors import InvalidRequest, NoFreeSlot, UnsupportedByArch

if TYPE_CHECKING:
    from .capabilities import DebugCapabilities

DEFAULT_SPACE = "mem"
"""Address space of a debugger address when the arch distinguishes none (1:1 or single space)."""


class PointKind(enum.Enum):
    SW_BREAK = "swbreak"
    HW_BREAK = "hwbreak"
    WATCH_WRITE = "watch"
    WATCH_READ = "rwatch"
    WATCH_ACCESS = "awatch"

    @property
    def is_watch(self) -> bool:
        return self in WATCH_KINDS

    @property
    def gdb_type(self) -> int:
        """The ``Z`` packet type number (Z0..Z4)."""
        return _GDB_TYPES[self]

    @classmethod
    def from_gdb_type(cls, t: int) -> PointKind:
        for kind, n in _GDB_TYPES.items():
            if n == t:
                return kind
        raise InvalidRequest(f"unknown breakpoint type Z{t}")


WATCH_KINDS = frozenset({PointKind.WATCH_WRITE, PointKind.WATCH_READ, PointKind.WATCH_ACCESS})
_GDB_TYPES = {
    PointKind.SW_BREAK: 0,
    PointKind.HW_BREAK: 1,
    PointKind.WATCH_WRITE: 2,
    PointKind.WATCH_READ: 3,
    PointKind.WATCH_ACCESS: 4,
}


@dataclass(frozen=True, slots=True)
class DebugPoint:
    """One point as the debugger names it. Identity is (kind, space, addr, length)."""

    kind: PointKind
    addr: int
    length: int = 1
    space: str = DEFAULT_SPACE
    _hash: int = field(init=False, repr=False, compare=False)
    """Worked out once: a point is a dict key on every hit (its stats, its condition), and
    the generated hash would build a tuple and hash the enum in Python each time."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.kind, self.addr, self.length, self.space)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[DebugPoint], tuple[PointKind, int, int, str]]:
        # rebuilt from its fields, so the hash is this process's (str hashes are salted)
        return (DebugPoint, (self.kind, self.addr, self.length, self.space))

    def __str__(self) -> str:
        return f"{self.kind.value} {self.space}:{self.addr:#x}/{self.length}"


class HitContext(Protocol):
    """What a breakpoint's condition sees of the vCPU that reached it (read-only)."""

    vcpu: int
    pc: int

    def register(self, name: str) -> int:
        """A register by its GDB name (``r3``, ``rax``...)."""
        ...

    def gdb_register(self, regnum: int) -> int:
        """A register by GDB register number (the arch's target description order)."""
        ...

    def read_memory(self, addr: int, length: int) -> bytes:
        """Guest memory as the debugger sees it (the guest's words, never trap words)."""
        ...


Condition = Callable[[HitContext], object]
"""A breakpoint's condition: true stops the vCPU, false lets it run on, raising stops it and
says why (see :mod:`guestdbg.session.hits`)."""


@dataclass(slots=True)
class SwEntry:
    """A software breakpoint: the word it replaced is kept so removal can restore it."""

    point: DebugPoint
    refs: int = 1
    original: bytes = b""
    gpa: int = -1
    """Guest-physical address of the trap word (the point's address is virtual)."""
    inserted: bool = False
    suspended: bool = False
    """The original word is back for one vCPU's step over it (what traps there meanwhile is
    the guest's own instruction, not this trap word)."""


@dataclass(slots=True)
class HwEntry:
    point: DebugPoint
    refs: int = 1
    via_sw: bool = False
    """A hardware breakpoint served by a trap word (``caps.hw_break_via_sw``); ``trap`` holds it."""
    trap: SwEntry | None = None


@dataclass
class PointTable:
    """All host debug points of one debug session (shared by its vCPUs)."""

    caps: DebugCapabilities
    sw: dict[tuple[str, int], SwEntry] = field(default_factory=dict)
    hw_breaks: dict[tuple[str, int], HwEntry] = field(default_factory=dict)
    watches: dict[tuple[str, int, PointKind, int], HwEntry] = field(default_factory=dict)
    watch_addrs: dict[tuple[str, int], list[HwEntry]] = field(default_factory=dict)
    hw_generation: int = 0
    """Bumped whenever the set of armed hardware points changes; vCPUs re-program lazily."""
    sw_generation: int = 0
    """Bumped whenever a trap word is wanted or no longer wanted at some address (a software
    breakpoint, or an instruction compare served by a trap word)."""
    _traps_seen: tuple[int, bool] = field(default=(-1, False), repr=False, compare=False)

    def has_traps(self) -> bool:
        """Any trap word wanted in guest memory. Asked before every KVM_RUN, so the answer is
        kept until :attr:`sw_generation` moves."""
        gen, traps = self._traps_seen
        if gen != self.sw_generation:
            gen = self.sw_generation
            traps = bool(self.sw) or any(e.via_sw for e in self.hw_breaks.values())
            self._traps_seen = (gen, traps)
        return traps

    # -- insertion ---------------------------------------------------------------------------

    def check(self, point: DebugPoint) -> None:
        """Raise if ``point`` could not be inserted now; changes nothing."""
        caps = self.caps
        if point.addr < 0 or point.length <= 0:
            raise InvalidRequest(f"{point}: negative address or empty length")
        kind = point.kind
        if caps.refused:
            why = caps.refusal(kind)
            if why is None and kind is PointKind.HW_BREAK and caps.hw_break_via_sw:
                why = caps.refusal(PointKind.SW_BREAK)  # served by the same trap word
            if why is not None:
                raise UnsupportedByArch(why)
        if kind is PointKind.SW_BREAK:
            return
        if kind is PointKind.HW_BREAK:
            if (point.space, point.addr) in self.hw_breaks or caps.hw_break_via_sw:
                return
            if caps.hw_breakpoints == 0:
                raise UnsupportedByArch("this arch has no hardware breakpoints")
            if self._used_breaks() >= caps.hw_breakpoints or not self._pool_has_room():
                raise NoFreeSlot(
                    f"all {caps.hw_breakpoints} hardware breakpoint slots are in use; "
                    f"cannot add {point}"
                )
            return
        if kind not in caps.watch_kinds:
            raise UnsupportedByArch(f"this arch cannot do {kind.value} watchpoints")
        if point.length not in caps.watch_lengths:
            raise UnsupportedByArch(
                f"{point}: watch length must be one of {list(caps.watch_lengths)}"
            )
        if caps.watch_aligned and point.addr % point.length:
            raise InvalidRequest(f"{point}: address must be aligned to its length")
        if (point.space, point.addr, kind, point.length) in self.watches:
            return
        limit = caps.hw_breakpoints if caps.shared_slots else caps.hw_watchpoints
        if limit == 0:
            raise UnsupportedByArch("this arch has no hardware watchpoints")
        if len(self.watches) >= limit and not caps.shared_slots:
            raise NoFreeSlot(f"all {limit} watchpoint slots are in use; cannot add {point}")
        if not self._pool_has_room():
            raise NoFreeSlot(f"all {limit} debug-register slots are in use; cannot add {point}")

    def _used_breaks(self) -> int:
        return sum(1 for e in self.hw_breaks.values() if not e.via_sw)

    def _pool_has_room(self) -> bool:
        if not self.caps.shared_slots:
            return True
        return self._used_breaks() + len(self.watches) < self.caps.hw_breakpoints

    def insert(self, point: DebugPoint, refs: int = 1) -> bool:
        """Record ``refs`` references to ``point``; True when it is new (the caller must arm
        it), False for a repeat."""
        self.check(point)
        kind = point.kind
        if kind is PointKind.SW_BREAK:
            key = (point.space, point.addr)
            sw = self.sw.get(key)
            if sw is not None:
                sw.refs += refs
                return False
            self.sw[key] = SwEntry(point, refs=refs)
            self.sw_generation += 1
            return True
        if kind is PointKind.HW_BREAK:
            hkey = (point.space, point.addr)
            hw = self.hw_breaks.get(hkey)
            if hw is not None:
                hw.refs += refs
                return False
            if self.caps.hw_break_via_sw:
                self.hw_breaks[hkey] = HwEntry(point, refs=refs, via_sw=True, trap=SwEntry(point))
                self.sw_generation += 1
            else:
                self.hw_breaks[hkey] = HwEntry(point, refs=refs)
                self.hw_generation += 1
            return True
        wkey = (point.space, point.addr, kind, point.length)
        hw = self.watches.get(wkey)
        if hw is not None:
            hw.refs += refs
            return False
        entry = HwEntry(point, refs=refs)
        self.watches[wkey] = entry
        self.watch_addrs.setdefault((point.space, point.addr), []).append(entry)
        self.hw_generation += 1
        return True

    def remove(self, point: DebugPoint) -> SwEntry | HwEntry | None:
        """Drop one reference; returns the entry when its last reference went (caller disarms).

        Raises InvalidRequest when no such point exists, like GDB expects from ``z``.
        """
        kind = point.kind
        if kind is PointKind.SW_BREAK:
            key = (point.space, point.addr)
            sw = self.sw.get(key)
            if sw is None or sw.point != point:
                raise InvalidRequest(f"no {point} to remove")
            sw.refs -= 1
            if sw.refs:
                return None
            del self.sw[key]
            self.sw_generation += 1
            return sw
        if kind is PointKind.HW_BREAK:
            hkey = (point.space, point.addr)
            hw = self.hw_breaks.get(hkey)
            if hw is None or hw.point != point:
                raise InvalidRequest(f"no {point} to remove")
            hw.refs -= 1
            if hw.refs:
                return None
            del self.hw_breaks[hkey]
            if hw.via_sw:
                self.sw_generation += 1
            else:
                self.hw_generation += 1
            return hw
        wkey = (point.space, point.addr, kind, point.length)
        hw = self.watches.get(wkey)
        if hw is None:
            raise InvalidRequest(f"no {point} to remove")
        hw.refs -= 1
        if hw.refs:
            return None
        del self.watches[wkey]
        same = self.watch_addrs[(point.space, point.addr)]
        same.remove(hw)
        if not same:
            del self.watch_addrs[(point.space, point.addr)]
        self.hw_generation += 1
        return hw

    # -- views -------------------------------------------------------------------------------

    def hw_points(self) -> list[DebugPoint]:
        """Points that need debug registers, in insertion order: breakpoints, then watchpoints.

        The order is what an arch consumes when it fills its slots, so it must be stable.
        Hardware breakpoints served by trap words are not among them.
        """
        breaks = [e.point for e in self.hw_breaks.values() if not e.via_sw]
        return breaks + [e.point for e in self.watches.values()]

    def traps(self) -> Iterator[SwEntry]:
        """Every trap word the session keeps in guest memory (software breakpoints and
        hardware breakpoints served by software)."""
        yield from self.sw.values()
        for e in self.hw_breaks.values():
            if e.trap is not None:
                yield e.trap

    def trap_at(self, space: str, addr: int) -> SwEntry | None:
        sw = self.sw.get((space, addr))
        if sw is not None:
            return sw
        hw = self.hw_breaks.get((space, addr))
        return hw.trap if hw is not None else None

    def all_points(self) -> Iterator[DebugPoint]:
        for e in self.sw.values():
            yield e.point
        for h in self.hw_breaks.values():
            yield h.point
        for w in self.watches.values():
            yield w.point

    def adopt(self, other: PointTable) -> None:
        """Take ``other``'s points in place (a migrated session): everyone holding this table
        (each vCPU's filter) sees them without being rewired."""
        self.sw, self.hw_breaks = dict(other.sw), dict(other.hw_breaks)
        self.watches, self.watch_addrs = dict(other.watches), dict(other.watch_addrs)
        self.hw_generation += 1
        self.sw_generation += 1

    def clear(self) -> None:
        self.sw.clear()
        self.hw_breaks.clear()
        self.watches.clear()
        self.watch_addrs.clear()
        self.hw_generation += 1
        self.sw_generation += 1
