"""Guest RAM: one buffer every vCPU's engine maps, and the VMM's view of it.

KVM backs a memory slot with the VMM's anonymous mapping and every vCPU sees the same pages; here
one ctypes buffer plays that mapping and each vCPU's Unicorn instance maps it with
``mem_map_ptr``, so a store by one vCPU is immediately visible to the others and to the VMM.

What the buffer does not share is Unicorn's translation cache: each engine keeps its own. A write
by the VMM (``write_phys``, e.g. a software breakpoint) therefore tells every registered listener
to drop the cached translations of the written range.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from guestdbg.errors import BadAddress

from .board import PAGE_SIZE

_ZERO_PAGE = bytes(PAGE_SIZE)


class GuestMemory:
    def __init__(self, size: int) -> None:
        if size <= 0 or size % PAGE_SIZE:
            raise BadAddress(f"RAM size {size:#x} is not a positive multiple of {PAGE_SIZE:#x}")
        self.size = size
        self._buf = (ctypes.c_char * size)()
        self.address = ctypes.addressof(self._buf)
        self.view = memoryview(self._buf).cast("B")
        self._listeners: list[Callable[[int, int], None]] = []

    def on_write(self, listener: Callable[[int, int], None]) -> None:
        """``listener(lo, hi)`` runs after every VMM write to [lo, hi)."""
        self._listeners.append(listener)

    def contains(self, gpa: int, size: int = 1) -> bool:
        return gpa >= 0 and size >= 0 and gpa + size <= self.size

    def _check(self, gpa: int, size: int) -> None:
        if not self.contains(gpa, size):
            raise BadAddress(
                f"guest-physical range {gpa:#x}+{size:#x} is outside RAM (0..{self.size:#x})"
            )

    def read(self, gpa: int, size: int) -> bytes:
        self._check(gpa, size)
        return bytes(self.view[gpa : gpa + size])

    def write(self, gpa: int, data: bytes) -> None:
        self._check(gpa, len(data))
        self.view[gpa : gpa + len(data)] = data
        for listener in self._listeners:
            listener(gpa, gpa + len(data))

    def word(self, gpa: int) -> int:
        """A big-endian 32-bit word, for instruction fetches by the model (no listeners)."""
        return int.from_bytes(self.view[gpa : gpa + 4], "big")

    def nonzero_pages(self) -> dict[int, bytes]:
        """Page number -> contents for every page that is not all zero (a compact snapshot)."""
        out: dict[int, bytes] = {}
        v = self.view
        for n in range(self.size // PAGE_SIZE):
            page = v[n * PAGE_SIZE : (n + 1) * PAGE_SIZE]
            if page != _ZERO_PAGE:
                out[n] = bytes(page)
        return out

    def load_pages(self, pages: dict[int, bytes]) -> None:
        """Replace all of RAM by ``pages`` (the rest zero), without notifying listeners."""
        ctypes.memset(self.address, 0, self.size)
        for n, data in pages.items():
            if len(data) != PAGE_SIZE or not self.contains(n * PAGE_SIZE, PAGE_SIZE):
                raise BadAddress(f"snapshot page {n} does not fit this RAM")
            self.view[n * PAGE_SIZE : (n + 1) * PAGE_SIZE] = data
