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

import contextlib
import ctypes
from collections.abc import Callable, Iterator, Sequence

from guestdbg.emuhost.memory import PAGE_SIZE as PAGE
from guestdbg.emuhost.memory import GuestMemory
from guestdbg.emuhost.unicorn import SlotMapper

from .exits import ExitWriter
from .uc import UC_HOOK_MEM_WRITE, UC_PROT_ALL, Uc

MMIO_DATA = 8
"""Bytes ``kvm_run.mmio.data`` holds: a longer fragment leaves in several exits."""


class MmioStores:
    def __init__(self, uc: Uc, ram: GuestMemory, mapper: SlotMapper, exits: ExitWriter) -> None:
        self._uc = uc
        self._ram = ram
        self._mapper = mapper
        self._exits = exits
        self._writes: list[tuple[int, int, int]] = []
        """(linear address, size, value) of every store of the captured instruction."""
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

    @contextlib.contextmanager
    def capturing(self, pages: Sequence[int]) -> Iterator[None]:
        """While the block runs, the engine regions holding ``pages`` map private writable
        copies and every store is recorded; afterwards the regions are mapped as before (the
        caller protects watched pages again) and the translations made meanwhile dropped."""
        uc = self._uc
        regions = {r for r in (self._mapper.region_at(p) for p in pages) if r is not None}
        copies = []
        self._writes = []
        hook = uc.hook_add(UC_HOOK_MEM_WRITE, self._on_write)
        swapped: list[tuple[int, int, int, int]] = []
        try:
            for region in sorted(regions):
                gpa, size, address, _ = region
                copy = (ctypes.c_char * size).from_buffer_copy(ctypes.string_at(address, size))
                copies.append(copy)
                uc.mem_unmap(gpa, size)
                swapped.append(region)
                uc.mem_map_ptr(gpa, size, UC_PROT_ALL, ctypes.addressof(copy))
            uc.ctl_flush_tb()
            yield
        finally:
            uc.hook_del(hook)
            for gpa, size, address, prot in swapped:
                uc.mem_unmap(gpa, size)
                uc.mem_map_ptr(gpa, size, prot, address)
            uc.ctl_flush_tb()

    def _on_write(
        self, uc: Uc, access: int, address: int, size: int, value: int, user_data: object
    ) -> None:
        self._writes.append((address, size, value & ((1 << (8 * size)) - 1)))

    def collect(self, to_gpa: Callable[[int], int | None]) -> bool:
        """Turn the recorded stores into MMIO fragments (``to_gpa``: the guest's page walk);
        True when any byte fell on a read-only page."""
        stored: dict[int, int] = {}
        for address, size, value in self._writes:
            for i in range(size):
                stored[address + i] = (value >> (8 * i)) & 0xFF
        self._writes = []
        fragments: list[tuple[int, bytearray]] = []
        last: tuple[int, int] | None = None
        for linear in sorted(stored):
            gpa = to_gpa(linear)
            slot = self._ram.slot_at(gpa) if gpa is not None else None
            if gpa is None or slot is None or not slot.read_only:
                last = None
                continue
            if last is not None and last == (linear - 1, gpa - 1) and gpa % PAGE:
                fragments[-1][1].append(stored[linear])
            else:
                fragments.append((gpa, bytearray([stored[linear]])))
            last = (linear, gpa)
        self.pending = [
            (gpa + n, bytes(data[n : n + MMIO_DATA]))
            for gpa, data in fragments
            for n in range(0, len(data), MMIO_DATA)
        ]
        return bool(self.pending)

    def next_exit(self) -> int:
        gpa, data = self.pending.pop(0)
        return self._exits.mmio(gpa, data, is_write=True)
