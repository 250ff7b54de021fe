"""Where the CPU would fetch a code byte from, found by walking the guest's page tables.

Why not KVM_TRANSLATE: it costs an ioctl per page (about 5-10 µs here) and says only whether an
address is mapped, not whether the CPU may *execute* there (XD, U/S, SMEP). Carrying out an
instruction in place is exact only where the CPU's own fetch would have succeeded and changed
nothing, so :func:`code_gpa` answers only then (Intel SDM vol. 3 §4.5 and §4.6):

* every entry of the walk present, with its accessed bit already set (the CPU would set it
  otherwise: a write the debugger would leave out);
* no reserved bit: XD without EFER.NXE, PS in a PML4/PML5 entry, the bits below a 2 MiB page's
  frame, any physical-address bit from :data:`SAFE_PHYS_BITS` up (the CPU's MAXPHYADDR is not
  known here, so anything that might be above it is refused); 1 GiB pages are refused too
  (their support is a CPUID bit);
* executable: no XD bit at any level (with EFER.NXE);
* CPL 3: user-accessible at every level; CPL 0-2 under CR4.SMEP: not user-accessible at some
  level (a user page is not executable for the kernel then);
* the address canonical for the paging mode (4-level: 48 bits, CR4.LA57: 57).

Anything else gives None and the caller refuses - refusing is always correct.
"""

from __future__ import annotations

from collections.abc import Callable

PRESENT = 1 << 0
USER = 1 << 2
ACCESSED = 1 << 5
PAGE_SIZE = 1 << 7
NO_EXECUTE = 1 << 63
SAFE_PHYS_BITS = 39
"""No x86-64 CPU has a MAXPHYADDR below 39 bits: physical-address bits from here up might be
reserved on the guest's CPU, so an entry with one set is refused."""
_HIGH_PHYS = ((1 << 52) - 1) & ~((1 << SAFE_PHYS_BITS) - 1)
_FRAME = ((1 << 52) - 1) & ~0xFFF
_LARGE_RESERVED_2M = 0x1FE000
"""Bits 13-20 of a 2 MiB page's entry: reserved (bit 12 is its PAT bit)."""
CR0_PG = 1 << 31
CR4_SMEP = 1 << 20
CR4_LA57 = 1 << 12
PAGE = 4096

ReadPhys = Callable[[int, int], bytes]


def canonical(va: int, la57: bool) -> bool:
    """``va`` is canonical for 4-level (48-bit) or 5-level (57-bit) paging."""
    top = va >> (56 if la57 else 47)
    return top == 0 or top == (1 << (8 if la57 else 17)) - 1


_SHIFTS4 = (39, 30, 21, 12)
_SHIFTS5 = (48, 39, 30, 21, 12)
_MUST = PRESENT | ACCESSED
_CHECKED = PRESENT | ACCESSED | NO_EXECUTE | _HIGH_PHYS
"""An entry is usable when, of these bits, exactly PRESENT and ACCESSED are set."""


def code_gpa(read_phys: ReadPhys, cr3: int, cr4: int, cpl: int, va: int) -> int | None:
    """The guest-physical address the CPU fetches ``va`` from, in 64-bit mode with paging at
    ``cpl``, when that fetch would fault on nothing and write nothing; else None. Raises what
    ``read_phys`` raises for a table outside guest RAM."""
    return walk(read_phys, cr3, cr4, cpl, va)[0]


Entries = tuple[tuple[int, bytes], ...]
"""The paging entries a walk read: (guest-physical address, its 8 bytes), in walk order."""


def walk(read_phys: ReadPhys, cr3: int, cr4: int, cpl: int, va: int) -> tuple[int | None, Entries]:
    """:func:`code_gpa`, and the entries it read to decide."""
    la57 = cr4 & CR4_LA57
    if not canonical(va, bool(la57)):
        return None, ()
    table = cr3 & _FRAME
    user = USER
    read: list[tuple[int, bytes]] = []
    for shift in _SHIFTS5 if la57 else _SHIFTS4:
        at = table + 8 * ((va >> shift) & 0x1FF)
        raw = read_phys(at, 8)
        read.append((at, raw))
        entry = int.from_bytes(raw, "little")
        if entry & _CHECKED != _MUST:
            return None, ()  # not present, not yet accessed, XD (or reserved), beyond 39 bits
        user &= entry
        if entry & PAGE_SIZE and shift != 12:
            if shift != 21 or entry & _LARGE_RESERVED_2M:
                return None, ()  # PS in a PML4/PML5 entry, a 1 GiB page, or reserved bits
            gpa = (entry & _FRAME & ~0x1FFFFF) | (va & 0x1FFFFF)
            break
        table = entry & _FRAME
    else:
        gpa = table | (va & 0xFFF)
    if (cpl == 3 and not user) or (cpl != 3 and user and cr4 & CR4_SMEP):
        return None, ()
    return gpa, tuple(read)


_WALKS_KEPT = 64


class WalkCache:
    """:func:`code_gpa` for pages walked before, exactly: a walk's answer depends only on CR3,
    CR4, the CPL, the page and the entries it read, whose addresses follow from the entries
    before them. So a cached walk holds when each of its entries still reads the same 8 bytes
    - one read and one compare per level instead of decoding them again. The guest may have
    changed a table since; then the entries differ and the page is walked again."""

    def __init__(self) -> None:
        self._walks: dict[tuple[int, int, int, int], tuple[int, Entries]] = {}

    def gpa(self, read_phys: ReadPhys, cr3: int, cr4: int, cpl: int, va: int) -> int | None:
        key = (cr3, cr4, cpl, va >> 12)
        known = self._walks.get(key)
        if known is not None:
            page, entries = known
            for at, raw in entries:
                if read_phys(at, 8) != raw:
                    break
            else:
                return page | (va & 0xFFF)
        gpa, entries = walk(read_phys, cr3, cr4, cpl, va)
        if gpa is None:
            self._walks.pop(key, None)
            return None
        if len(self._walks) >= _WALKS_KEPT:
            self._walks.clear()
        self._walks[key] = (gpa & ~0xFFF, entries)
        return gpa
