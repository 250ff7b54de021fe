"""KVM_TRANSLATE for the emulated host: the guest's 4-level page walk (SDM vol. 3 §4.5).

Long mode only (CR0.PG with EFER.LMA); with paging off the address is physical. 1 GiB and 2 MiB
pages end the walk early (PS bit). A not-present entry, or a table outside RAM, is "not mapped".
"""

from __future__ import annotations

from guestdbg.emuhost.memory import GuestMemory
from guestdbg.errors import BadAddress

CR0_PG = 1 << 31
PRESENT = 0x1
PAGE_SIZE_BIT = 0x80
ADDR_MASK = 0x000F_FFFF_FFFF_F000


def translate(ram: GuestMemory, cr0: int, cr3: int, gva: int) -> int | None:
    if not cr0 & CR0_PG:
        return gva
    table = cr3 & ADDR_MASK
    for level, shift in enumerate((39, 30, 21, 12)):
        index = (gva >> shift) & 0x1FF
        try:
            entry = ram.uint(table + 8 * index, 8)
        except BadAddress:
            return None
        if not entry & PRESENT:
            return None
        if level in (1, 2) and entry & PAGE_SIZE_BIT:
            offset_mask = (1 << shift) - 1
            return (entry & ADDR_MASK & ~offset_mask) | (gva & offset_mask)
        table = entry & ADDR_MASK
    return table | (gva & 0xFFF)


ACCESSED = 0x20
USER = 0x4
NO_EXECUTE = 1 << 63
CR4_SMEP = 1 << 20


def fetched_in_place(ram: GuestMemory, cr0: int, cr3: int, cr4: int, cpl: int, gpa: int) -> bool:
    """The CPU, at ``cpl``, would fetch from linear ``gpa`` at guest-physical ``gpa`` and its
    walk would change nothing: every entry present and already accessed, none no-execute,
    user-accessible at every level for CPL 3 and not user-accessible at every level under
    SMEP below it. Then Unicorn's drop of the translations at linear ``gpa`` (which walks as
    a fetch) drops exactly those of guest-physical ``gpa`` (docs/reference/unicorn.md §13)."""
    if not cr0 & CR0_PG:
        return True
    table = cr3 & ADDR_MASK
    user = True
    for level, shift in enumerate((39, 30, 21, 12)):
        try:
            entry = ram.uint(table + 8 * ((gpa >> shift) & 0x1FF), 8)
        except BadAddress:
            return False
        if entry & (PRESENT | ACCESSED) != PRESENT | ACCESSED or entry & NO_EXECUTE:
            return False
        user = user and bool(entry & USER)
        leaf = level == 3 or (level in (1, 2) and entry & PAGE_SIZE_BIT)
        if leaf:
            offset_mask = (1 << shift) - 1
            if (entry & ADDR_MASK & ~offset_mask) | (gpa & offset_mask) != gpa:
                return False
            return user if cpl == 3 else not (user and cr4 & CR4_SMEP)
        table = entry & ADDR_MASK
    return False
