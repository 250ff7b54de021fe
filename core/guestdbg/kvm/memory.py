"""Guest RAM as the VMM maps it: anonymous host mappings, one per KVM memory slot.

Reads and writes copy through the slot table and never hand out a view of guest memory, so
unmapping at close cannot leave a dangling buffer behind. A range is resolved completely before
a byte is copied: an access that leaves guest memory anywhere raises
:class:`~guestdbg.errors.BadAddress` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import BadAddress, InvalidRequest
from . import libc

PAGE_SIZE = 4096


@dataclass(frozen=True)
class MemorySlot:
    slot: int
    gpa: int
    size: int
    flags: int
    host: Any
    """The ``void *`` of the host mapping (``userspace_addr``)."""

    @property
    def end(self) -> int:
        return self.gpa + self.size

    @property
    def userspace_addr(self) -> int:
        return int(libc.ffi.cast("uintptr_t", self.host))


class GuestMemory:
    """The slot table of one VM."""

    def __init__(self) -> None:
        self._slots: list[MemorySlot] = []

    @property
    def slots(self) -> tuple[MemorySlot, ...]:
        return tuple(self._slots)

    def map(self, gpa: int, size: int, flags: int) -> MemorySlot:
        """A new slot's host memory (not yet told to KVM: :meth:`commit` or :meth:`discard`)."""
        if size <= 0 or gpa < 0 or gpa % PAGE_SIZE or size % PAGE_SIZE:
            raise InvalidRequest(
                f"a memory slot needs a page-aligned address and size, got {gpa:#x}+{size:#x}"
            )
        for s in self._slots:
            if gpa < s.end and s.gpa < gpa + size:
                raise InvalidRequest(
                    f"{gpa:#x}+{size:#x} overlaps memory slot {s.slot} ({s.gpa:#x}+{s.size:#x})"
                )
        used = {s.slot for s in self._slots}
        slot = next(n for n in range(len(used) + 1) if n not in used)
        host = libc.mmap(size, libc.MAP_ANON_PRIVATE | libc.MAP_NORESERVE, what="mmap(guest RAM)")
        return MemorySlot(slot, gpa, size, flags, host)

    def commit(self, slot: MemorySlot) -> None:
        self._slots.append(slot)

    @staticmethod
    def discard(slot: MemorySlot) -> None:
        libc.munmap(slot.host, slot.size)

    def read(self, gpa: int, size: int) -> bytes:
        if size < 0:
            raise InvalidRequest(f"cannot read {size} bytes")
        return b"".join(bytes(libc.ffi.buffer(p, n)) for p, n in self._resolve(gpa, size))

    def write(self, gpa: int, data: bytes | bytearray | memoryview) -> None:
        src = memoryview(data).cast("B")
        done = 0
        for ptr, n in self._resolve(gpa, len(src)):
            libc.ffi.memmove(ptr, src[done : done + n], n)
            done += n

    def _resolve(self, gpa: int, size: int) -> list[tuple[Any, int]]:
        """Host pieces covering ``[gpa, gpa+size)``, possibly across adjacent slots."""
        pieces = list(self._pieces(gpa, size))
        if sum(n for _, n in pieces) != size:
            raise BadAddress(f"guest-physical {gpa:#x}+{size:#x} is not all guest RAM")
        return pieces

    def _pieces(self, gpa: int, size: int) -> Iterator[tuple[Any, int]]:
        addr, left = gpa, size
        while left > 0:
            slot = next((s for s in self._slots if s.gpa <= addr < s.end), None)
            if slot is None or addr < 0:
                return
            n = min(left, slot.end - addr)
            yield libc.ffi.cast("char *", slot.host) + (addr - slot.gpa), n
            addr += n
            left -= n

    def close(self) -> None:
        for s in self._slots:
            libc.munmap(s.host, s.size)
        self._slots.clear()
