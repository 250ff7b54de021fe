"""Guest RAM as the VMM maps it: the host mappings it owns, and the KVM memory slots over them.

The two are kept apart because the kernel keeps them apart: a slot is only a window
(``userspace_addr``, ``memory_size``) onto memory the VMM mapped, and deleting it
(``KVM_SET_USER_MEMORY_REGION`` with size 0) leaves that memory where it was. So every
:meth:`GuestMemory.map` makes one anonymous mapping, owned here and unmapped at close, and
slots may be deleted and re-created over any page-aligned piece of one mapping (a page of a
code region split off into a read-only slot of its own, docs/reference/kvm-debug-abi.md §11).

Reads and writes copy through the slot table and never hand out a view of guest memory, so
unmapping at close cannot leave a dangling buffer behind (the views :meth:`GuestMemory.read`
keeps are its own, released before anything is unmapped). A range is resolved completely before
a byte is copied: an access that leaves guest memory anywhere raises
:class:`~guestdbg.errors.BadAddress` and changes nothing. The VMM's mapping of a read-only slot
is writable, so ``write`` goes through read-only slots too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import BadAddress, InvalidRequest
from . import libc

PAGE_SIZE = 4096
_CHARP = libc.ffi.typeof("char *")
_VIEWS_KEPT = 64


@dataclass(frozen=True)
class HostMapping:
    """One anonymous mapping the VMM made for guest RAM."""

    host: Any
    """The ``void *`` mmap returned."""
    size: int

    @property
    def address(self) -> int:
        return int(libc.ffi.cast("uintptr_t", self.host))

    def holds(self, address: int, size: int) -> bool:
        return self.address <= address and address + size <= self.address + self.size


@dataclass(frozen=True)
class MemorySlot:
    slot: int
    gpa: int
    size: int
    flags: int
    userspace_addr: int
    """Where the slot's first byte is in the VMM's address space (inside one mapping)."""

    @property
    def end(self) -> int:
        return self.gpa + self.size

    @property
    def host(self) -> Any:
        """The slot's memory as a ``char *``."""
        return libc.ffi.cast("char *", self.userspace_addr)


class GuestMemory:
    """The owned host mappings and the slot table of one VM (the kernel is told by the caller:
    :class:`guestdbg.kvm.device.KvmVm`)."""

    def __init__(self) -> None:
        self._mappings: list[HostMapping] = []
        self._slots: list[MemorySlot] = []
        self._views: dict[tuple[int, int], memoryview] = {}
        """A slot's memory as a view, by (userspace_addr, size), made at its first read (a
        small read then costs a slice: a page-table walk makes several per breakpoint hit).
        Keyed by the host window rather than the slot, because a view stays good as long as its
        mapping is mapped, whatever the slot table does meanwhile: a read on another thread
        that took a view just before a slot change still reads mapped memory. Released only
        before an unmapping (:meth:`discard`, :meth:`close`); forgotten when more than
        ``_VIEWS_KEPT`` windows have been read (slots split many times over)."""

    @property
    def slots(self) -> tuple[MemorySlot, ...]:
        """Every slot, in guest-physical order."""
        return tuple(self._slots)

    @property
    def mappings(self) -> tuple[HostMapping, ...]:
        return tuple(self._mappings)

    def map(self, gpa: int, size: int, flags: int) -> MemorySlot:
        """Fresh host memory for a new slot at ``gpa`` (not yet told to KVM, nor in the table:
        :meth:`commit` it, or :meth:`discard` it when the kernel refuses)."""
        if size <= 0 or gpa < 0 or gpa % PAGE_SIZE or size % PAGE_SIZE:
            raise InvalidRequest(
                f"a memory slot needs a page-aligned address and size, got {gpa:#x}+{size:#x}"
            )
        for s in self._slots:
            if gpa < s.end and s.gpa < gpa + size:
                raise InvalidRequest(
                    f"{gpa:#x}+{size:#x} overlaps memory slot {s.slot} ({s.gpa:#x}+{s.size:#x})"
                )
        host = libc.mmap(size, libc.MAP_ANON_PRIVATE | libc.MAP_NORESERVE, what="mmap(guest RAM)")
        mapping = HostMapping(host, size)
        self._mappings.append(mapping)
        return MemorySlot(self.free_slot_number(), gpa, size, flags, mapping.address)

    def free_slot_number(self) -> int:
        used = {s.slot for s in self._slots}
        return next(n for n in range(len(used) + 1) if n not in used)

    def _drop_views(self) -> None:
        """Before an unmapping: no view may outlive the memory under it."""
        views, self._views = self._views, {}
        for view in views.values():
            view.release()

    def _view(self, s: MemorySlot) -> memoryview:
        key = (s.userspace_addr, s.size)
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= _VIEWS_KEPT:
                # many slot splits: forget them, not release them (a reader on another thread
                # may hold one; the memory under it stays mapped until close)
                self._views = {}
            host = libc.ffi.cast(_CHARP, s.userspace_addr)
            view = memoryview(libc.ffi.buffer(host, s.size))
            self._views[key] = view
        return view

    def commit(self, slot: MemorySlot) -> None:
        """Put ``slot`` in the table, replacing the slot of the same number (the kernel took it)."""
        self._slots = [s for s in self._slots if s.slot != slot.slot]
        if slot.size:
            self._slots.append(slot)
            self._slots.sort(key=lambda s: s.gpa)

    def discard(self, slot: MemorySlot) -> None:
        """Unmap the mapping :meth:`map` made for ``slot`` (the kernel refused the slot)."""
        for m in self._mappings:
            if m.address == slot.userspace_addr and m.size == slot.size:
                self._drop_views()
                self._mappings.remove(m)
                libc.munmap(m.host, m.size)
                return

    def mapping_of(self, userspace_addr: int, size: int) -> HostMapping | None:
        """The owned mapping that holds ``[userspace_addr, +size)`` whole, if one does."""
        return next((m for m in self._mappings if m.holds(userspace_addr, size)), None)

    def read(self, gpa: int, size: int) -> bytes:
        if size < 0:
            raise InvalidRequest(f"cannot read {size} bytes")
        for s in self._slots:  # one slot holds it all: the common case, without the pieces
            if s.gpa <= gpa and gpa + size <= s.gpa + s.size:
                view = self._views.get((s.userspace_addr, s.size))
                if view is None:
                    view = self._view(s)
                off = gpa - s.gpa
                return view[off : off + size].tobytes()
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
            yield slot.host + (addr - slot.gpa), n
            addr += n
            left -= n

    def close(self) -> None:
        """Forget the slots and unmap every owned mapping (the VM fd is closed by then)."""
        self._drop_views()
        self._slots.clear()
        for m in self._mappings:
            libc.munmap(m.host, m.size)
        self._mappings.clear()
