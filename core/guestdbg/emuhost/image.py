"""Guest ELF images: loadable segments, entry point and symbols, read once.

This is the tree's one reader of guest ELF files: the emulated hosts load their images with it,
the x86 boot code (which also serves ``/dev/kvm``) reads the symbols that name its tables, and
tests, examples and benchmarks find guest addresses through :func:`symbols` (or through
:func:`guestdbg.demo.elf_info.symbols`, which is this).

Segments are the ``PT_LOAD`` program headers with a memory size, at their *physical* addresses
(``p_paddr``), the way QEMU's ``load_elf`` places a bare-metal ``-kernel`` image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import InvalidRequest


class Segment(NamedTuple):
    paddr: int
    data: bytes
    """The bytes in the file; the rest up to ``memsz`` is zero."""
    memsz: int


@dataclass(frozen=True)
class ElfImage:
    path: Path
    machine: str
    """``e_machine`` as pyelftools names it (``EM_PPC``, ``EM_X86_64``...)."""
    elfclass: int
    byteorder: str
    entry: int
    segments: tuple[Segment, ...]
    symbols: Mapping[str, int]
    """Every named symbol of ``.symtab`` (empty when the file has none)."""

    def __getitem__(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise InvalidRequest(f"{self.path.name} has no symbol {name!r}") from None

    @property
    def low(self) -> int:
        """The lowest load address."""
        return min(s.paddr for s in self.segments)

    @property
    def memsz(self) -> int:
        """The summed memory size of the segments (what QEMU's ``load_elf`` reports)."""
        return sum(s.memsz for s in self.segments)

    def require(
        self,
        what: str,
        machine: str,
        elfclass: int | None = None,
        byteorder: str | None = None,
    ) -> None:
        """Refuse (InvalidRequest) an image of another machine, class or byte order, or one with
        nothing to load; ``what`` names the kind expected ("an x86-64 ELF")."""
        if (
            self.machine != machine
            or elfclass not in (None, self.elfclass)
            or byteorder not in (None, self.byteorder)
        ):
            raise InvalidRequest(
                f"{self.path.name} is a {self.elfclass}-bit {self.byteorder}-endian "
                f"{self.machine} file, not {what}"
            )
        if not self.segments:
            raise InvalidRequest(f"{self.path.name} has no loadable segment")

    def load(self, write: Callable[[int, bytes], None]) -> None:
        """Write every segment, zero-filled past its file bytes, through ``write(gpa, data)``."""
        for paddr, data, memsz in self.segments:
            write(paddr, data + bytes(max(0, memsz - len(data))))


def read_elf(path: str | Path) -> ElfImage:
    """The image in ``path``; InvalidRequest when it cannot be read as an ELF file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            segments = tuple(
                _segment(path, seg)
                for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]
            )
            tab = elf.get_section_by_name(".symtab")
            names = (
                {s.name: int(s["st_value"]) for s in tab.iter_symbols() if s.name}
                if isinstance(tab, SymbolTableSection)
                else {}
            )
            return ElfImage(
                path=path,
                machine=str(elf["e_machine"]),
                elfclass=int(elf.elfclass),
                byteorder="little" if elf.little_endian else "big",
                entry=int(elf["e_entry"]),
                segments=segments,
                symbols=names,
            )
    except (OSError, ELFError) as e:
        raise InvalidRequest(f"cannot load {path}: {e}") from e


def _segment(path: Path, seg: Any) -> Segment:
    data = seg.data()
    if len(data) != seg["p_filesz"]:
        raise InvalidRequest(
            f"{path.name} is cut short: a segment at {seg['p_paddr']:#x} has "
            f"{len(data)} of its {seg['p_filesz']} bytes"
        )
    return Segment(int(seg["p_paddr"]), data, int(seg["p_memsz"]))


def symbols(path: str | Path) -> dict[str, int]:
    """Name -> value of every named symbol; InvalidRequest when the file has no symbol table."""
    image = read_elf(path)
    if not image.symbols:
        raise InvalidRequest(f"{path} has no symbol table")
    return dict(image.symbols)
