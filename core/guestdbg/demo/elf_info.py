"""The little the demo needs from the guest ELF: its symbols and where its code is."""

from __future__ import annotations

from pathlib import Path

from elftools.elf.elffile import ELFFile

from ..emuhost import image


def symbols(elf: Path) -> dict[str, int]:
    """Name -> value of every named symbol (:func:`guestdbg.emuhost.image.symbols`)."""
    return image.symbols(elf)


def code_ranges(elf: Path) -> list[tuple[int, int]]:
    """(address, size) of every allocated executable section: what must be byte-identical
    after a debugger leaves."""
    out = []
    with open(elf, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            flags = int(sec["sh_flags"])
            if flags & 0x2 and flags & 0x4 and sec["sh_size"]:  # SHF_ALLOC | SHF_EXECINSTR
                out.append((int(sec["sh_addr"]), int(sec["sh_size"])))
    return out
