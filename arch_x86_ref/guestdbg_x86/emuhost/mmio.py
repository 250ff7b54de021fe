"""Guest stores into read-only memory slots on the emulated x86-64 host, exiting as x86 KVM
exits for them (docs/reference/kvm-debug-abi.md §11.2).

The kernel cannot let such a store reach memory, so it emulates the storing instruction
(``x86_emulate_instruction``). ``emulator_read_write`` splits an access that crosses a page
boundary into one piece per page; a piece whose page takes the write (RAM) is written, a piece
whose page refuses it (a read-only slot) becomes an MMIO fragment. The instruction then retires
(RIP after it) and KVM_RUN returns KVM_EXIT_MMIO with the first fragment: ``mmio.phys_addr``,
``mmio.len`` (at most 8), ``mmio.is_write`` 1 and the bytes in ``mmio.data``. What is left of a
fragment longer than 8 bytes, and any further fragment, leaves the next KVM_RUN the same way
before the guest runs on (``complete_emulated_mmio``).

Unicorn refuses the store before it happens (the slot's pages are mapped without write
permission, :class:`guestdbg.emuhost.unicorn.SlotMapper`). The run loop then executes the
instruction once more with the engine's mapping of those read-only pages swapped for a private
copy (:meth:`MmioStores.capturing`) and a write hook recording every byte it stores: the RAM
part lands in RAM through the shared buffer, the read-only part lands in the copy, which is
dropped, so neither the VMM nor another vCPU ever sees it. The recorded bytes that fell on
read-only pages become the fragments.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from guestdbg.emuhost.memory import PAGE_SIZE as PAGE
from guestdbg.emuhost.memory import GuestMemory
from guestdbg.emuhost.unicorn import RegionSwitch, SlotMapper, StoreRecorder

from .exits import ExitWriter
from .uc import UC_PROT_ALL, Uc

MMIO_DATA = 8
"""Bytes ``kvm_run.mmio.data`` holds: a longer fragment leaves in several exits."""

Region = tuple[int, int, int, int]
"""(gpa, size, host address, permissions), as :class:`SlotMapper` maps it."""


class MmioStores:
    def __init__(self, uc: Uc, ram: GuestMemory, mapper: SlotMapper, exits: ExitWriter) -> None:
        self._uc = uc
        self._ram = ram
        self._mapper = mapper
        self._exits = exits
        self._switch = RegionSwitch(uc)
        self._recorder = StoreRecorder(uc)
        self._copies: dict[tuple[int, int], ctypes.Array[ctypes.c_char]] = {}
        """One private buffer per (gpa, size) of a region ever captured, refilled each time."""
        self._swapped: list[Region] = []
        self.pending: list[tuple[int, bytes]] = []
        """(guest-physical address, at most 8 bytes) still to leave KVM_RUN, first first."""

    def read_only_pages(self, pages: Sequence[int]) -> list[int]:
        """Those of ``pages`` (guest-physical) that lie in read-only slots."""
        out = []
        for page in pages:
            slot = self._ram.slot_at(page)
            if slot is not None and slot.read_only:
                out.append(page)
        return out

    def start(self, pages: Sequence[int]) -> list[Region]:
        """Map the engine regions holding ``pages`` onto private copies of their bytes, made
        now, with every permission, and record every store from here on; the regions."""
        regions = sorted({r for r in (self._mapper.region_at(p) for p in pages) if r is not None})
        try:
            for region in regions:
                gpa, size, address, _ = region
                copy = self._copies.get((gpa, size))
                if copy is None:
                    copy = self._copies[(gpa, size)] = (ctypes.c_char * size)()
                ctypes.memmove(copy, address, size)
                self._switch.remap(gpa, size, UC_PROT_ALL, ctypes.addressof(copy))
                self._swapped.append(region)
        except BaseException:
            self.stop()
            raise
        self._recorder.start()
        return regions

    def stop(self) -> list[tuple[int, int, int]]:
        """Map the regions back onto guest RAM as they were (the caller protects watched pages
        again); the stores recorded since :meth:`start`. Unmapping a copy drops the
        translations Unicorn made of its pages (docs/reference/unicorn.md §13)."""
        writes = self._recorder.stop()
        swapped, self._swapped = self._swapped, []
        for gpa, size, address, prot in swapped:
            self._switch.remap(gpa, size, prot, address)
        return writes

    def collect(self, writes: Sequence[tuple[int, int, int]], regions: Sequence[Region]) -> bool:
        """Turn the recorded stores that fell on ``regions`` (the copies) into MMIO fragments;
        True when any byte did. Unicorn reports a store by its guest-physical address; a store
        that crosses into the next page is taken to continue at the next guest-physical page."""
        stored: dict[int, int] = {}
        for address, size, value in writes:
            for i in range(size):
                stored[address + i] = (value >> (8 * i)) & 0xFF
        fragments: list[tuple[int, bytearray]] = []
        last = -2
        for gpa in sorted(stored):
            if not any(lo <= gpa < lo + n for lo, n, _, _ in regions):
                continue
            if gpa == last + 1 and gpa % PAGE:
                fragments[-1][1].append(stored[gpa])
            else:
                fragments.append((gpa, bytearray([stored[gpa]])))
            last = gpa
        self.pending = [
            (gpa + n, bytes(data[n : n + MMIO_DATA]))
            for gpa, data in fragments
            for n in range(0, len(data), MMIO_DATA)
        ]
        return bool(self.pending)

    def next_exit(self) -> int:
        gpa, data = self.pending.pop(0)
        return self._exits.mmio(gpa, data, is_write=True)
