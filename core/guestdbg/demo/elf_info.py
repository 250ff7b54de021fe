"""The little the demo needs from the guest ELF: its symbols and where its code is."""

from __future__ import annotations

from pathlib import Path

from elftools.elf.elffile import ELFFile

from ..errors import GuestDebugError


def symbols(elf: Path) -> dict[str, int]:
    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        if tab is None:
            raise GuestDebugError(f"{elf} has no symbol table")
        return {s.name: int(s["st_value"]) for s in tab.iter_symbols() if s.name}  # type: ignore[attr-defined]


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
