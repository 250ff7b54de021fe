"""Guest RAM of an emulated KVM host: memory slots as KVM has them, each one host buffer that the
VMM and every vCPU's engine share.

KVM backs a memory slot (``KVM_SET_USER_MEMORY_REGION``: slot number, flags, guest-physical
address, size) with the VMM's anonymous mapping, and every vCPU sees the same pages. Here a
ctypes buffer plays that mapping and each vCPU's engine maps it (Unicorn ``mem_map_ptr``), so a
store by one vCPU is at once visible to the others and to the VMM.

What the buffer does not share is the engines' translated code: each engine keeps its own. A
write by the VMM (``write_phys``: loading an image, planting a trap word) therefore tells every
write listener which range changed, so the vCPUs drop their translations of it; the kernel
model's own writes (an interrupt frame) pass ``notify=False``.

Like :mod:`guestdbg.kvm.memory` over ``/dev/kvm``, an access is resolved completely before a
byte moves: one that leaves guest memory anywhere raises :class:`~guestdbg.errors.BadAddress`
and changes nothing.
"""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import BadAddress, InvalidRequest, KernelError

PAGE_SIZE = 4096
_ZERO_PAGE = bytes(PAGE_SIZE)


@dataclass(frozen=True, eq=False)
class RamSlot:
    """One memory slot and the host buffer behind it."""

    slot: int
    gpa: int
    size: int
    flags: int
    buffer: Any
    """The ctypes array standing for the VMM's mapping (``userspace_addr``)."""

    @property
    def end(self) -> int:
        return self.gpa + self.size

    @property
    def address(self) -> int:
        """Host address of the buffer: what an engine maps at ``gpa``."""
        return ctypes.addressof(self.buffer)

    @property
    def view(self) -> memoryview:
        return memoryview(self.buffer).cast("B")


class GuestMemory:
    """The slot table of one emulated VM; ``byteorder`` is the guest's (for :meth:`uint`)."""

    def __init__(self, byteorder: Literal["little", "big"], valid_flags: int = 0) -> None:
        self.byteorder: Literal["little", "big"] = byteorder
        self.valid_flags = valid_flags
        """The slot flags the modelled kernel's ``check_memory_region_flags`` accepts; any other
        flag is EINVAL (docs/reference/kvm-debug-abi.md §11)."""
        self._slots: list[RamSlot] = []
        self._write_listeners: list[Callable[[int, int], None]] = []
        self._slot_listeners: list[Callable[[RamSlot], None]] = []
        self._spans: list[tuple[int, int, memoryview]] = []
        """(gpa, end, byte view) per slot: the fast path of an access within one slot."""

    @property
    def slots(self) -> tuple[RamSlot, ...]:
        return tuple(self._slots)

    @property
    def size(self) -> int:
        """Bytes of guest RAM in all slots."""
        return sum(s.size for s in self._slots)

    def add_slot(self, gpa: int, size: int, flags: int = 0) -> RamSlot:
        """KVM_SET_USER_MEMORY_REGION with a new slot: fresh zeroed memory at ``gpa``. A flag
        outside :attr:`valid_flags` is EINVAL, as ``check_memory_region_flags`` refuses it
        (docs/reference/kvm-debug-abi.md §11). An accepted flag is kept on the slot and changes
        nothing else: no emulated host logs dirty pages or has read-only slots."""
        if size <= 0 or gpa < 0 or gpa % PAGE_SIZE or size % PAGE_SIZE:
            raise InvalidRequest(
                f"a memory slot needs a page-aligned address and size, got {gpa:#x}+{size:#x}"
            )
        if flags & ~self.valid_flags:
            raise KernelError("KVM_SET_USER_MEMORY_REGION", errno.EINVAL, f"flags {flags:#x}")
        for s in self._slots:
            if gpa < s.end and s.gpa < gpa + size:
                raise InvalidRequest(
                    f"{gpa:#x}+{size:#x} overlaps memory slot {s.slot} ({s.gpa:#x}+{s.size:#x})"
                )
        used = {s.slot for s in self._slots}
        number = next(n for n in range(len(used) + 1) if n not in used)
        slot = RamSlot(number, gpa, size, flags, (ctypes.c_char * size)())
        self._slots.append(slot)
        self._slots.sort(key=lambda s: s.gpa)
        self._spans = [(s.gpa, s.end, s.view) for s in self._slots]
        for listener in self._slot_listeners:
            listener(slot)
        return slot

    # -- listeners ----------------------------------------------------------------------------

    def on_slot(self, listener: Callable[[RamSlot], None]) -> None:
        """``listener(slot)`` for every slot there is now and every slot added later (an engine
        maps them)."""
        self._slot_listeners.append(listener)
        for slot in self._slots:
            listener(slot)

    def on_write(self, listener: Callable[[int, int], None]) -> None:
        """``listener(lo, hi)`` after every notifying write to ``[lo, hi)``."""
        self._write_listeners.append(listener)

    # -- access -------------------------------------------------------------------------------

    def contains(self, gpa: int, size: int = 1) -> bool:
        """``[gpa, gpa+size)`` is all guest RAM (possibly across adjacent slots)."""
        if gpa < 0 or size < 0:
            return False
        for lo, hi, _ in self._spans:
            if lo <= gpa and gpa + size <= hi:
                return True
        return sum(n for _, _, n in self._pieces(gpa, size)) == size

    def read(self, gpa: int, size: int) -> bytes:
        if gpa >= 0 and size >= 0:
            for lo, hi, view in self._spans:  # within one slot: one slice
                if lo <= gpa and gpa + size <= hi:
                    return bytes(view[gpa - lo : gpa - lo + size])
        return b"".join(bytes(s.view[o : o + n]) for s, o, n in self._resolve(gpa, size))

    def write(self, gpa: int, data: bytes | bytearray | memoryview, *, notify: bool = True) -> None:
        """``notify=False`` for what the kernel model writes itself (no translation to drop)."""
        src = memoryview(data).cast("B")
        size = len(src)
        for lo, hi, view in self._spans:
            if gpa >= 0 and lo <= gpa and gpa + size <= hi:  # within one slot: one slice
                view[gpa - lo : gpa - lo + size] = src
                break
        else:
            done = 0
            for s, o, n in self._resolve(gpa, size):
                s.view[o : o + n] = src[done : done + n]
                done += n
        if notify:
            for listener in self._write_listeners:
                listener(gpa, gpa + len(src))

    def uint(self, gpa: int, size: int) -> int:
        """An unsigned integer of ``size`` bytes in the guest's byte order (no listeners)."""
        return int.from_bytes(self.read(gpa, size), self.byteorder)

    def _resolve(self, gpa: int, size: int) -> list[tuple[RamSlot, int, int]]:
        if size < 0:
            raise InvalidRequest(f"cannot access {size} bytes")
        pieces = list(self._pieces(gpa, size)) if gpa >= 0 else []
        if sum(n for _, _, n in pieces) != size:
            raise BadAddress(f"guest-physical {gpa:#x}+{size:#x} is not all guest RAM")
        return pieces

    def _pieces(self, gpa: int, size: int) -> Iterator[tuple[RamSlot, int, int]]:
        """(slot, offset in it, length) covering ``[gpa, gpa+size)`` while it stays in RAM."""
        addr, left = gpa, size
        while left > 0:
            slot = next((s for s in self._slots if s.gpa <= addr < s.end), None)
            if slot is None:
                return
            n = min(left, slot.end - addr)
            yield slot, addr - slot.gpa, n
            addr += n
            left -= n

    # -- snapshots ----------------------------------------------------------------------------

    def nonzero_pages(self) -> dict[int, bytes]:
        """Guest page number -> contents for every page that is not all zero."""
        out: dict[int, bytes] = {}
        for s in self._slots:
            view = s.view
            for n in range(s.size // PAGE_SIZE):
                page = view[n * PAGE_SIZE : (n + 1) * PAGE_SIZE]
                if page != _ZERO_PAGE:
                    out[s.gpa // PAGE_SIZE + n] = bytes(page)
        return out

    def load_pages(self, pages: dict[int, bytes]) -> None:
        """Replace all of RAM by ``pages`` (the rest zero), without notifying listeners."""
        for number, data in pages.items():
            if len(data) != PAGE_SIZE or not self.contains(number * PAGE_SIZE, PAGE_SIZE):
                raise BadAddress(f"snapshot page {number} does not fit this RAM")
        for s in self._slots:
            ctypes.memset(s.address, 0, s.size)
        for number, data in pages.items():
            self.write(number * PAGE_SIZE, data, notify=False)
