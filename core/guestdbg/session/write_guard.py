"""Read-only memory slots for the guest pages that hold trap words, so that a guest rewriting
its own code cannot silently overwrite a software breakpoint.

A loader copying code, a JIT or self-modifying code stores over the debugger's trap word and
the breakpoint never fires. Where the kernel offers read-only memory slots
(``KVM_CAP_READONLY_MEM``: x86 KVM; docs/reference/kvm-debug-abi.md §11), each page holding a
trap word goes into a slot of its own, flagged ``KVM_MEM_READONLY``, over the very same host
memory: the guest still reads and runs the page, but its stores leave KVM_RUN as
``KVM_EXIT_MMIO`` with the store in ``kvm_run.mmio`` (the instruction already retired). The
vCPU's port hands such an exit to :meth:`TrapPageGuard.take_store`, which applies the store
through the VMM's mapping as :func:`.traps.apply_guest_store` says (the guest's bytes land,
every armed trap word stays armed with the guest's new instruction as its original) and the
vCPU runs on. An MMIO exit for any other address is the VMM's device model's, as before.

The layout follows the trap words lazily: the desired set of pages is recomputed whenever points
change, but slots are reshaped only when the VM is about to run (:meth:`TrapPageGuard.apply`,
called with every vCPU parked, as KVM_SET_USER_MEMORY_REGION on a slot under a running vCPU
would let it fault on a half-built layout). GDB removes every breakpoint at each stop and
inserts them again to resume, so a stop/resume cycle with the same breakpoints reshapes nothing.
When the last trap word leaves a page, and at detach, the VMM's slot comes back exactly as it
was (same number, flags, address and mapping).

Linux BookE KVM has no read-only slots and no dirty log: there :func:`TrapPageGuard.for_vm`
gives None and an overwritten trap word is found when the guest next stops
(:mod:`.rewrites`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator

from ..kvm.constants import KVM_CAP_READONLY_MEM, KVM_MEM_READONLY
from ..vcpu import MemorySlotsHandle, SlotInfo, VmHandle

log = logging.getLogger(__name__)

PAGE = 4096


class TrapPageGuard:
    """The slot layout that write-protects trap pages, for one VM."""

    def __init__(self, vm: VmHandle, slots: MemorySlotsHandle) -> None:
        self._vm = slots
        field = vm.layout.field
        self._phys_addr = field("struct kvm_run", "mmio", "phys_addr")
        self._len = field("struct kvm_run", "mmio", "len")
        self._is_write = field("struct kvm_run", "mmio", "is_write")
        self._data = field("struct kvm_run", "mmio", "data", 0).offset
        self.wanted: frozenset[int] = frozenset()
        """Pages (guest-physical, page-aligned) that hold an inserted trap word now."""
        self.applied: frozenset[int] = frozenset()
        """Pages whose slot is read-only now: stores to them exit to :meth:`take_store`."""
        self.active = False
        """Some page is read-only: the port's MMIO check is one attribute read otherwise."""
        self._originals: dict[int, SlotInfo] = {}
        """The VMM's slots split now, by slot number, as the VMM had them."""
        self._pieces: dict[int, list[SlotInfo]] = {}
        """What each split slot is now: its pieces in guest-physical order."""
        self._refused: set[int] = set()
        """Pages the kernel would not split for (logged once; :mod:`.rewrites` covers them)."""
        self.stores = 0
        """Guest stores to trap pages applied since the session began."""

    @classmethod
    def for_vm(cls, vm: VmHandle) -> TrapPageGuard | None:
        """A guard when the VM's handle offers its slot table and the kernel read-only slots."""
        if not isinstance(vm, MemorySlotsHandle):
            return None
        try:
            if vm.check_extension(KVM_CAP_READONLY_MEM) <= 0:
                return None
        except Exception:  # a handle that cannot say: no guard, the fallback still works
            log.debug("KVM_CHECK_EXTENSION(KVM_CAP_READONLY_MEM) failed", exc_info=True)
            return None
        return cls(vm, vm)

    # -- the layout -----------------------------------------------------------------------------

    def want(self, trap_gpas: Iterable[int]) -> None:
        """The trap words now in guest memory (their guest-physical addresses)."""
        self.wanted = frozenset(g & ~(PAGE - 1) for g in trap_gpas) - self._refused

    def apply(self) -> None:
        """Reshape the slots to :attr:`wanted`; call only with every vCPU parked. A slot the
        kernel will not split is put back as it was and its pages left to :mod:`.rewrites`."""
        if self.wanted == self.applied:
            return
        by_slot: dict[int, set[int]] = {n: set() for n in self._originals}
        originals = dict(self._originals)
        for page in self.wanted:
            orig = self._original_slot(page, originals)
            if orig is None:
                self._refuse(page, "no writable memory slot holds it")
                continue
            originals[orig.slot] = orig
            by_slot.setdefault(orig.slot, set()).add(page)
        for number, pages in by_slot.items():
            orig = originals[number]
            now = self._pieces.get(number)
            if now is not None and _read_only_pages(now) == pages:
                continue
            try:
                self._reshape(orig, pages)
            except Exception as e:
                self._recover(orig)
                for page in pages:
                    self._refuse(page, str(e))
        self.applied = frozenset(
            page for pieces in self._pieces.values() for page in _read_only_pages(pieces)
        )
        self.wanted = self.wanted - self._refused
        self.active = bool(self.applied)

    def restore(self) -> None:
        """Every slot back as the VMM had it (detach, close); call with every vCPU parked."""
        self.wanted = frozenset()
        self.apply()

    def _original_slot(self, page: int, originals: dict[int, SlotInfo]) -> SlotInfo | None:
        for orig in originals.values():
            if orig.gpa <= page < orig.end:
                return orig
        for s in self._vm.memory_slots():
            if s.gpa <= page < s.end:
                if s.flags & KVM_MEM_READONLY:
                    return None  # the VMM's own read-only slot: guest stores are its device's
                return s
        return None

    def _reshape(self, orig: SlotInfo, pages: set[int]) -> None:
        """Delete what the slot is now, create its new pieces (KVM refuses overlapping slots,
        so every old piece goes first)."""
        vm = self._vm
        for piece in self._pieces.pop(orig.slot, [orig]):
            vm.set_memory_slot(dataclasses.replace(piece, size=0))
        if not pages:
            self._originals.pop(orig.slot, None)
            vm.set_memory_slot(orig)
            return
        self._originals[orig.slot] = orig
        self._pieces[orig.slot] = []  # what exists of the new layout, for _recover
        used = {s.slot for s in vm.memory_slots()} | set(self._originals)
        numbers = _free_numbers(used)
        for i, (gpa, size, ro) in enumerate(_split(orig, pages)):
            number = orig.slot if i == 0 else next(numbers)
            piece = SlotInfo(
                number,
                orig.flags | (KVM_MEM_READONLY if ro else 0),
                gpa,
                size,
                orig.userspace_addr + (gpa - orig.gpa),
            )
            vm.set_memory_slot(piece)
            self._pieces[orig.slot].append(piece)

    def _recover(self, orig: SlotInfo) -> None:
        """After a refused split: whatever was created goes, the VMM's slot comes back."""
        for piece in self._pieces.pop(orig.slot, []):
            try:
                self._vm.set_memory_slot(dataclasses.replace(piece, size=0))
            except Exception:
                log.exception("could not delete slot %d while putting slot %d back", piece.slot,
                              orig.slot)  # fmt: skip
        self._originals.pop(orig.slot, None)
        if not any(s.slot == orig.slot for s in self._vm.memory_slots()):
            self._vm.set_memory_slot(orig)

    def _refuse(self, page: int, why: str) -> None:
        if page not in self._refused:
            log.warning(
                "guest page %#x holds a trap word but cannot be write-protected (%s): a guest "
                "rewrite of it is found only at the next stop",
                page,
                why,
            )
            self._refused.add(page)

    # -- the exit path --------------------------------------------------------------------------

    def store_at(self, run: memoryview) -> tuple[int, bytes] | None:
        """The guest store a KVM_EXIT_MMIO carries, if it is one to a write-protected trap page
        (a store the kernel split at a page boundary exits once per MMIO fragment)."""
        gpa = self._phys_addr.get(run)
        if gpa & ~(PAGE - 1) not in self.applied or not self._is_write.get(run):
            return None
        n = self._len.get(run)
        if not 0 < n <= 8:
            return None
        return gpa, bytes(run[self._data : self._data + n])


def _read_only_pages(pieces: Iterable[SlotInfo]) -> set[int]:
    return {gpa for p in pieces if p.flags & KVM_MEM_READONLY for gpa in range(p.gpa, p.end, PAGE)}


def _split(orig: SlotInfo, pages: set[int]) -> list[tuple[int, int, bool]]:
    """(gpa, size, read-only) pieces covering ``orig``: runs of protected pages read-only, the
    rest as the VMM had it."""
    out: list[tuple[int, int, bool]] = []
    at = orig.gpa
    for page in sorted(pages):
        if page > at:
            out.append((at, page - at, False))
        if out and out[-1][2] and out[-1][0] + out[-1][1] == page:
            gpa, size, _ = out[-1]
            out[-1] = (gpa, size + PAGE, True)
        else:
            out.append((page, PAGE, True))
        at = page + PAGE
    if at < orig.end:
        out.append((at, orig.end - at, False))
    return out


def _free_numbers(used: set[int]) -> Iterator[int]:
    n = 0
    while True:
        if n not in used:
            yield n
        n += 1
