"""Guest RAM of one emulated VM: one host buffer every vCPU's Unicorn maps (``mem_map_ptr``).

Writes made by the VMM (``write_phys``: loading, trap words) bypass Unicorn's own tracking of
self-modifying code, so each write is announced to the vCPUs, which drop their translated code
before their next run. An access outside RAM raises BadAddress and changes nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from guestdbg.errors import BadAddress, InvalidRequest

PAGE = 4096


class GuestRam:
    def __init__(self, size: int) -> None:
        if size <= 0 or size % PAGE:
            raise InvalidRequest(f"guest RAM must be a positive multiple of {PAGE} bytes")
        self.size = size
        self._buf = ctypes.create_string_buffer(size)
        self.address = ctypes.addressof(self._buf)
        self.listeners: list[Callable[[], None]] = []
        """Called after every VMM write (vCPUs mark their translations stale)."""

    def _check(self, gpa: int, size: int) -> None:
        if size < 0:
            raise InvalidRequest(f"cannot access {size} bytes")
        if gpa < 0 or gpa + size > self.size:
            raise BadAddress(f"guest-physical {gpa:#x}+{size:#x} is not all guest RAM")

    def read(self, gpa: int, size: int) -> bytes:
        self._check(gpa, size)
        return ctypes.string_at(self.address + gpa, size)

    def write(self, gpa: int, data: bytes, *, code: bool = True) -> None:
        """``code=False`` for data the vCPU model writes itself (an interrupt frame)."""
        self._check(gpa, len(data))
        ctypes.memmove(self.address + gpa, data, len(data))
        if code:
            for notify in self.listeners:
                notify()

    def read_u64(self, gpa: int) -> int:
        return int.from_bytes(self.read(gpa, 8), "little")
