"""Guest RAM of an emulated KVM host: the VMM's host buffers, and memory slots over them as KVM
has them, which the VMM and every vCPU's engine share.

KVM backs a memory slot (``KVM_SET_USER_MEMORY_REGION``: slot number, flags, guest-physical
address, size, ``userspace_addr``) with a piece of the VMM's anonymous mapping, and every vCPU
sees the same pages. Here a ctypes buffer (:class:`HostBuffer`) plays that mapping and each
vCPU's engine maps the slots' pieces of it (Unicorn ``mem_map_ptr``), so a store by one vCPU is
at once visible to the others and to the VMM. As in the kernel, a slot is only a window: it can
be deleted and re-created over any page-aligned piece of a buffer (:meth:`GuestMemory.set_slot`,
a model of ``__kvm_set_memory_region``), and the buffer stays.

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
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import BadAddress, InvalidRequest, KernelError
from ..kvm import constants as C
from ..vcpu import SlotInfo

PAGE_SIZE = 4096
_ZERO_PAGE = bytes(PAGE_SIZE)


SLOT_IDS = 32764
"""Slot numbers the model accepts (``id >= KVM_MEM_SLOTS_NUM`` is EINVAL in
``__kvm_set_memory_region``; 32767 less an arch's internal slots, three on x86: the smaller
bound is used for every arch, docs/reference/kvm-debug-abi.md §11.1)."""


@dataclass(frozen=True, eq=False)
class HostBuffer:
    """Memory the VMM mapped for guest RAM (an anonymous mapping over ``/dev/kvm``): slots are
    windows onto it, and it outlives their deletion."""

    buffer: Any
    """The ctypes array standing for the mapping: over an anonymous ``mmap``, so it is
    page-aligned and zeroed as the VMM's is (the kernel refuses an unaligned
    ``userspace_addr``)."""

    @property
    def address(self) -> int:
        return ctypes.addressof(self.buffer)

    @property
    def size(self) -> int:
        return ctypes.sizeof(self.buffer)

    def holds(self, address: int, size: int) -> bool:
        return self.address <= address and address + size <= self.address + self.size


@dataclass(frozen=True, eq=False)
class RamSlot:
    """One memory slot: ``size`` bytes of a host buffer from ``offset``, at ``gpa``."""

    slot: int
    gpa: int
    size: int
    flags: int
    host: HostBuffer
    offset: int = 0

    @property
    def end(self) -> int:
        return self.gpa + self.size

    @property
    def address(self) -> int:
        """Host address of the slot's first byte (``userspace_addr``): what an engine maps at
        ``gpa``."""
        return self.host.address + self.offset

    @property
    def read_only(self) -> bool:
        return bool(self.flags & C.KVM_MEM_READONLY)

    @property
    def view(self) -> memoryview:
        return memoryview(self.host.buffer).cast("B")[self.offset : self.offset + self.size]

    def info(self) -> SlotInfo:
        return SlotInfo(self.slot, self.flags, self.gpa, self.size, self.address)


class GuestMemory:
    """The host buffers and the slot table of one emulated VM; ``byteorder`` is the guest's
    (for :meth:`uint`)."""

    def __init__(self, byteorder: Literal["little", "big"], valid_flags: int = 0) -> None:
        self.byteorder: Literal["little", "big"] = byteorder
        self.valid_flags = valid_flags
        """The slot flags the modelled kernel's ``check_memory_region_flags`` accepts; any other
        flag is EINVAL (docs/reference/kvm-debug-abi.md §11)."""
        self._buffers: list[HostBuffer] = []
        self._slots: list[RamSlot] = []
        self._write_listeners: list[Callable[[int, int], None]] = []
        self._slot_listeners: list[Callable[[], None]] = []
        self._spans: list[tuple[int, int, memoryview]] = []
        """(gpa, end, byte view) per slot: the fast path of an access within one slot."""

    @property
    def slots(self) -> tuple[RamSlot, ...]:
        """Every slot, in guest-physical order."""
        return tuple(self._slots)

    @property
    def buffers(self) -> tuple[HostBuffer, ...]:
        return tuple(self._buffers)

    @property
    def size(self) -> int:
        """Bytes of guest RAM in all slots."""
        return sum(s.size for s in self._slots)

    def add_slot(self, gpa: int, size: int, flags: int = 0) -> RamSlot:
        """A new host buffer of ``size`` zeroed bytes, and a new slot over it at ``gpa`` (the
        VMM's mmap, then KVM_SET_USER_MEMORY_REGION; the slot number is the lowest free one).
        Bad alignment and overlap are InvalidRequest before the "kernel" sees them, as
        :meth:`guestdbg.kvm.device.KvmVm.add_memory` does; a flag outside :attr:`valid_flags`
        is the kernel's EINVAL (``check_memory_region_flags``, docs/reference/kvm-debug-abi.md
        §11), and nothing is added."""
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
        number = next(n for n in range(len(used) + 1) if n not in used)
        host = HostBuffer((ctypes.c_char * size).from_buffer(mmap.mmap(-1, size)))
        self._buffers.append(host)
        try:
            self.set_slot(SlotInfo(number, flags, gpa, size, host.address))
        except KernelError:
            self._buffers.remove(host)
            raise
        return self.slot(number)

    def slot_at(self, gpa: int) -> RamSlot | None:
        """The slot holding guest-physical ``gpa``, if one does."""
        return next((s for s in self._slots if s.gpa <= gpa < s.end), None)

    def slot(self, number: int) -> RamSlot:
        return next(s for s in self._slots if s.slot == number)

    def set_slot(self, info: SlotInfo) -> None:
        """KVM_SET_USER_MEMORY_REGION, modelled on ``virt/kvm/kvm_main.c``
        (``__kvm_set_memory_region``, ``check_memory_region_flags``;
        docs/reference/kvm-debug-abi.md §11.1, each refusal checked against this machine's
        kernel by ``tests/test_real_kvm.py``). A slot that is not deleted must lie inside one host
        buffer (InvalidRequest first, as :class:`guestdbg.kvm.device.KvmVm` checks its own
        mappings before the kernel sees the call). Then, each EINVAL unless said otherwise:
        a flag the kernel lacks; a size, guest address or host address not page-aligned; a
        slot number out of range or in another address space; a range that wraps; deleting
        (size 0) a slot that does not exist; changing an existing slot's host address, size
        or KVM_MEM_READONLY (a move to another ``gpa`` and a change of the other flags are
        allowed); EEXIST for a new or moved slot overlapping another. Nothing changes on a
        refusal; every change is told to the slot listeners (the engines remap)."""
        fields = (info.slot, info.flags, info.gpa, info.size, info.userspace_addr)
        if any(not 0 <= v < 1 << 64 for v in fields) or not 0 <= info.slot < 1 << 32:
            raise InvalidRequest(f"{info} does not fit struct kvm_userspace_memory_region")
        if info.size and not any(b.holds(info.userspace_addr, info.size) for b in self._buffers):
            raise InvalidRequest(
                f"slot {info.slot}: {info.userspace_addr:#x}+{info.size:#x} is not inside one "
                "host buffer of this VM's guest RAM"
            )

        def refuse(why: str, code: int = errno.EINVAL) -> KernelError:
            return KernelError("KVM_SET_USER_MEMORY_REGION", code, f"slot {info.slot}: {why}")

        if info.flags & ~self.valid_flags:
            raise refuse(f"flags {info.flags:#x}")
        if info.size % PAGE_SIZE or info.gpa % PAGE_SIZE or info.userspace_addr % PAGE_SIZE:
            raise refuse("size and addresses must be page-aligned")
        if info.slot >> 16 or info.slot >= SLOT_IDS:
            raise refuse("no such slot number")
        if info.gpa + info.size >= 1 << 64:
            raise refuse("the range wraps")
        old = next((s for s in self._slots if s.slot == info.slot), None)
        if not info.size:
            if old is None:
                raise refuse("deleting a slot that does not exist")
            self._install([s for s in self._slots if s is not old])
            return
        if old is not None:
            if info.userspace_addr != old.address or info.size != old.size:
                raise refuse("an existing slot keeps its host address and size")
            if (info.flags ^ old.flags) & C.KVM_MEM_READONLY:
                raise refuse("an existing slot keeps KVM_MEM_READONLY")
            if info.gpa == old.gpa and info.flags == old.flags:
                return
        if old is None or info.gpa != old.gpa:
            for s in self._slots:
                if s is not old and info.gpa < s.end and s.gpa < info.gpa + info.size:
                    raise refuse(f"overlaps slot {s.slot}", errno.EEXIST)
        host = next(b for b in self._buffers if b.holds(info.userspace_addr, info.size))
        new = RamSlot(
            info.slot, info.gpa, info.size, info.flags, host, info.userspace_addr - host.address
        )
        self._install([*(s for s in self._slots if s is not old), new])

    def _install(self, slots: list[RamSlot]) -> None:
        self._slots = sorted(slots, key=lambda s: s.gpa)
        self._spans = [(s.gpa, s.end, s.view) for s in self._slots]
        for listener in self._slot_listeners:
            listener()

    # -- listeners ----------------------------------------------------------------------------

    def on_slots_changed(self, listener: Callable[[], None]) -> None:
        """``listener()`` after every change of the slot table (an engine remaps, lazily:
        :class:`guestdbg.emuhost.unicorn.SlotMapper`)."""
        self._slot_listeners.append(listener)

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
