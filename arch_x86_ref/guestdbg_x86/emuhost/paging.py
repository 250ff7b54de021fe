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
