"""Building guest programs: GNU as + ld for e500, cached by content.

``build(source, out_dir)`` assembles one ``.S`` file with ``powerpc-linux-gnu-as -mregnames
-me500mc`` and links it with ``powerpc-linux-gnu-ld`` and a linker script: ``link.ld`` next to
the source if there is one, else this package's. ``build64`` does the same for the 64-bit cores
(e5500, e6500): ``-a64 -me6500`` (e6500's instruction set is e5500's plus AltiVec) and
``ld -m elf64ppc``, a big-endian ELF64; it defines ``GUEST64`` for a source that serves both
widths (``.ifdef GUEST64``). Includes are looked up next to the source and in this
package (``hostio.inc``). The includes, the linker script, the flags and the tools' versions go
into the ELF's content hash (:mod:`guestdbg.guest_build` does the caching).

``build`` itself picks ``build64`` for a source in a directory named ``ppc64`` (the 64-bit test
guests, ``tests/guests/ppc64``), so a caller that only has a path gets the right width; such a
directory brings its own ``link.ld`` (a 64-bit output format).

``debug_lines=True`` assembles with ``-g``: DWARF line information for the assembly source, one
line per source line (a macro's or ``.rept``'s expansion is the line that invokes it), so GDB's
``step``/``next`` step source lines (and range-step them, docs/stepping.md).
"""

from __future__ import annotations

from pathlib import Path

from guestdbg.guest_build import GuestBuildError, cached_build

__all__ = ["PACKAGE_DIR", "GuestBuildError", "build", "build64", "is_64bit"]

AS = "powerpc-linux-gnu-as"
LD = "powerpc-linux-gnu-ld"
AS_FLAGS = ("-mregnames", "-me500mc", "-mbig-endian")
LD_FLAGS = ("--no-warn-rwx-segments", "-N")
AS_FLAGS_64 = ("-mregnames", "-a64", "-me6500", "-mbig-endian", "--defsym", "GUEST64=1")
LD_FLAGS_64 = ("-m", "elf64ppc", "--no-warn-rwx-segments", "-N")
DIR_64 = "ppc64"
PACKAGE_DIR = Path(__file__).resolve().parent


def _include_dirs(source: Path) -> list[Path]:
    return [source.parent, PACKAGE_DIR]


def _linker_script(source: Path) -> Path:
    local = source.parent / "link.ld"
    return local if local.exists() else PACKAGE_DIR / "link.ld"


def is_64bit(source: Path) -> bool:
    """Whether ``source`` is a 64-bit guest by its place (a ``ppc64`` directory)."""
    return Path(source).resolve().parent.name == DIR_64


def build(source: Path, out_dir: Path, *, debug_lines: bool = False) -> Path:
    """The ELF built from ``source`` into ``out_dir`` (reused when nothing changed); 64-bit for
    a source in a ``ppc64`` directory; with line information if ``debug_lines``."""
    if is_64bit(source):
        return build64(source, out_dir, debug_lines=debug_lines)
    return _build(source, out_dir, _lines(AS_FLAGS, debug_lines), LD_FLAGS)


def build64(source: Path, out_dir: Path, *, debug_lines: bool = False) -> Path:
    """The 64-bit (ELF64) guest built from ``source``, for e5500 and e6500."""
    return _build(source, out_dir, _lines(AS_FLAGS_64, debug_lines), LD_FLAGS_64)


def _lines(as_flags: tuple[str, ...], debug_lines: bool) -> tuple[str, ...]:
    return (*as_flags, "-g") if debug_lines else as_flags


def _build(
    source: Path, out_dir: Path, as_flags: tuple[str, ...], ld_flags: tuple[str, ...]
) -> Path:
    source = Path(source).resolve()
    script = _linker_script(source)
    includes = _include_dirs(source)

    def commands(obj: Path, elf: Path) -> list[list[str]]:
        return [
            [AS, *as_flags, *(f"-I{d}" for d in includes), "-o", str(obj), str(source)],
            [LD, *ld_flags, "-T", str(script), "-o", str(elf), str(obj)],
        ]

    return cached_build(
        source,
        out_dir,
        tools=(AS, LD),
        install_hint="install binutils-powerpc-linux-gnu (tools/bootstrap.sh does)",
        flags=(as_flags, ld_flags),
        inputs=[script, *(inc for d in includes for inc in sorted(d.glob("*.inc")))],
        commands=commands,
    )
