"""Trap words in guest memory: inserting, removing, and hiding them from the debugger's reads.

A software breakpoint is a word of guest memory the host overwrote. Three rules keep that
invisible to the guest and honest to the debugger: the original word is saved before the trap is
written; removal restores it only if the trap word is still there (the guest may have rewritten
its own code: then the guest's word wins and the caller is told); and every memory read the
debugger makes shows the original words, never the traps (users see trap bytes in disassembly
otherwise, docs/reference/peers.md §5).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..errors import BadAddress
from ..points import DEFAULT_SPACE, PointTable, SwEntry
from ..vcpu import VcpuHandle, VmHandle

log = logging.getLogger(__name__)

PAGE = 4096


def translate(vcpu: VcpuHandle, gva: int, length: int = 1) -> list[tuple[int, int, int]]:
    """Split [gva, gva+length) into (gva, gpa, n) runs that do not cross a page."""
    runs: list[tuple[int, int, int]] = []
    addr, end = gva, gva + length
    while addr < end:
        n = min(end, (addr | (PAGE - 1)) + 1) - addr
        gpa = vcpu.translate(addr)
        if gpa is None:
            raise BadAddress(f"guest address {addr:#x} is not mapped")
        runs.append((addr, gpa, n))
        addr += n
    return runs


class TrapWriter:
    """Writes and removes trap words for one session (all vCPUs share guest memory)."""

    def __init__(self, vm: VmHandle, insn: bytes) -> None:
        self.vm = vm
        self.insn = insn
        self.size = len(insn)
        self.replaced_while_out: list[tuple[SwEntry, bytes]] = []
        """Trap words whose original was replaced while it stood in memory for a step over it
        (the stepped instruction stored to itself, the VMM wrote there): each entry with the
        word it had saved before. :mod:`.rewrites` reports them at the next stop."""

    def insert(self, vcpu: VcpuHandle, entry: SwEntry) -> None:
        """Save the original word and write the trap; raises BadAddress and changes nothing."""
        addr = entry.point.addr
        runs = translate(vcpu, addr, self.size)
        if len(runs) != 1:
            raise BadAddress(f"a breakpoint at {addr:#x} would cross a page boundary")
        gpa = runs[0][1]
        original = self.vm.read_phys(gpa, self.size)
        self.vm.write_phys(gpa, self.insn)
        entry.original, entry.gpa, entry.inserted = original, gpa, True

    def remove(self, entry: SwEntry) -> str | None:
        """Restore the original word if the trap is still there; else say why not."""
        if not entry.inserted:
            return None
        entry.inserted = False
        current = self.vm.read_phys(entry.gpa, self.size)
        if current != self.insn:
            msg = (
                f"breakpoint word at {entry.point.addr:#x} was overwritten by the guest "
                f"(now {current.hex()}); left as the guest wrote it"
            )
            log.warning(msg)
            return msg
        self.vm.write_phys(entry.gpa, entry.original)
        return None

    def suspend(self, entry: SwEntry) -> bool:
        """Put the original word back for a step-over; True when it must be re-armed after."""
        if not entry.inserted:
            return False
        if self.vm.read_phys(entry.gpa, self.size) != self.insn:
            return False
        self.vm.write_phys(entry.gpa, entry.original)
        entry.suspended = True
        return True

    def rearm(self, entry: SwEntry) -> None:
        """The trap back after a step over it. The word that stood in for it may have been
        replaced during that step: the new word becomes the original (a later step-over must
        run the new instruction, not bring the old one back) and the change is recorded."""
        current = self.vm.read_phys(entry.gpa, self.size)
        if current != entry.original:
            self.replaced_while_out.append((entry, entry.original))
            entry.original = current
        self.vm.write_phys(entry.gpa, self.insn)
        entry.suspended = False


def shadow_read(
    points: PointTable, vm: VmHandle, vcpu: VcpuHandle, addr: int, length: int, insn: bytes
) -> bytes:
    """Guest memory as the debugger should see it: inserted traps replaced by original words."""
    out = bytearray()
    for _, gpa, n in translate(vcpu, addr, length):
        out += vm.read_phys(gpa, n)
    if not points.sw and not points.hw_breaks:
        return bytes(out)
    for entry in _traps_overlapping(points, vm, addr, length, insn):
        for i, b in enumerate(entry.original):
            pos = entry.point.addr + i - addr
            if 0 <= pos < length:
                out[pos] = b
    return bytes(out)


def shadow_write(
    points: PointTable, vm: VmHandle, vcpu: VcpuHandle, addr: int, data: bytes, insn: bytes
) -> None:
    """Write guest memory for the debugger; bytes under an inserted trap update its saved
    original instead, so the trap stays armed and a later removal restores the new bytes."""
    size = len(insn)
    buf = bytearray(data)
    covered = list(_traps_overlapping(points, vm, addr, len(data), insn))
    runs = translate(vcpu, addr, len(data))
    for entry in covered:
        orig = bytearray(entry.original)
        for i in range(len(orig)):
            pos = entry.point.addr + i - addr
            if 0 <= pos < len(buf):
                orig[i] = buf[pos]
        entry.original = bytes(orig)
    for gva, gpa, n in runs:
        chunk = bytearray(buf[gva - addr : gva - addr + n])
        for entry in covered:  # covered traps still hold the trap word: keep it in place
            for i in range(size):
                pos = entry.point.addr + i - gva
                if 0 <= pos < n:
                    chunk[pos] = insn[i]
        vm.write_phys(gpa, bytes(chunk))


def _traps_overlapping(
    points: PointTable,
    vm: VmHandle,
    addr: int,
    length: int,
    insn: bytes,
    space: str = DEFAULT_SPACE,
) -> Iterable[SwEntry]:
    """Inserted traps overlapping [addr, addr+length) whose word is still the trap: once the
    guest has rewritten its code over a trap, the memory holds the guest's word, so there is
    nothing to hide and the saved original is stale (reads and writes go to memory as is)."""
    size = len(insn)
    if len(points.sw) + len(points.hw_breaks) < length:
        candidates: Iterable[SwEntry | None] = points.traps()
    else:
        candidates = (points.trap_at(space, a) for a in range(addr - size + 1, addr + length))
    seen: set[int] = set()
    for entry in candidates:
        if entry is None or not entry.inserted or entry.gpa in seen:
            continue
        a = entry.point.addr
        if a + size > addr and a < addr + length and vm.read_phys(entry.gpa, size) == insn:
            seen.add(entry.gpa)
            yield entry


def apply_guest_store(points: PointTable, vm: VmHandle, gpa: int, data: bytes, insn: bytes) -> int:
    """A guest store the kernel handed back instead of doing it (the page holding trap words
    is read-only to the guest, :mod:`.write_guard`): do it as the guest meant, keeping every
    armed trap word armed with the guest's bytes as its saved original, so the breakpoint fires
    on the guest's new instruction and a step over it or its removal puts the new one there.

    A trap word out of memory for a step over it (``suspended``) takes the store in memory and
    in its original (re-arming writes the trap back over the new instruction). A word the guest
    overwrote some other way (memory is neither the trap nor in a step) is left to
    :mod:`.rewrites`. Returns how many trap words' originals changed."""
    size = len(insn)
    end = gpa + len(data)
    words: dict[int, list[SwEntry]] = {}
    for entry in points.traps():
        if entry.inserted and entry.gpa < end and entry.gpa + size > gpa:
            words.setdefault(entry.gpa, []).append(entry)
    buf = bytearray(data)
    changed = 0
    for at, entries in words.items():
        armed = vm.read_phys(at, size) == insn and not any(e.suspended for e in entries)
        if not armed and not any(e.suspended for e in entries):
            continue  # overwritten some other way: .rewrites finds it at the next stop
        for entry in entries:
            orig = bytearray(entry.original)
            for i in range(size):
                pos = at + i - gpa
                if 0 <= pos < len(buf):
                    orig[i] = data[pos]
                    if armed:
                        buf[pos] = insn[i]
            if bytes(orig) != entry.original:
                entry.original = bytes(orig)
                changed += 1
    vm.write_phys(gpa, bytes(buf))
    return changed
