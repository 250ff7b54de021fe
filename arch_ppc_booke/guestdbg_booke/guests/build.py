"""Building guest programs: GNU as + ld for e500, cached by content.

``build(source, out_dir)`` assembles one ``.S`` file with ``powerpc-linux-gnu-as -mregnames
-me500mc`` and links it with ``powerpc-linux-gnu-ld`` and a linker script: ``link.ld`` next to
the source if there is one, else this package's. Includes are looked up next to the source and in
this package (``hostio.inc``). The includes, the linker script, the flags and the tools'
versions go into the ELF's content hash (:mod:`guestdbg.guest_build` does the caching).

A source in a directory named ``ppc64`` is a 64-bit guest for e5500/e6500: ``-a64 -mbig
-me6500`` (the e6500 instruction set, AltiVec included, is a superset of the e5500's) and
``ld -m elf64ppc``; those flags are what goes into its hash. Its directory must then bring its
own ``link.ld`` (a 64-bit output format).
"""

from __future__ import annotations

from pathlib import Path

from guestdbg.guest_build import GuestBuildError, cached_build

__all__ = ["PACKAGE_DIR", "GuestBuildError", "build"]

AS = "powerpc-linux-gnu-as"
LD = "powerpc-linux-gnu-ld"
AS_FLAGS = ("-mregnames", "-me500mc", "-mbig-endian")
LD_FLAGS = ("--no-warn-rwx-segments", "-N")
AS_FLAGS_64 = ("-mregnames", "-me6500", "-a64", "-mbig")
LD_FLAGS_64 = ("--no-warn-rwx-segments", "-N", "-m", "elf64ppc")
DIR_64 = "ppc64"
PACKAGE_DIR = Path(__file__).resolve().parent


def _include_dirs(source: Path) -> list[Path]:
    return [source.parent, PACKAGE_DIR]


def _linker_script(source: Path) -> Path:
    local = source.parent / "link.ld"
    return local if local.exists() else PACKAGE_DIR / "link.ld"


def is_64bit(source: Path) -> bool:
    """Whether ``source`` is a 64-bit guest (it lives in a ``ppc64`` directory)."""
    return Path(source).resolve().parent.name == DIR_64


def build(source: Path, out_dir: Path) -> Path:
    """The ELF built from ``source`` into ``out_dir`` (reused when nothing changed)."""
    source = Path(source).resolve()
    script = _linker_script(source)
    includes = _include_dirs(source)
    as_flags, ld_flags = (AS_FLAGS_64, LD_FLAGS_64) if is_64bit(source) else (AS_FLAGS, LD_FLAGS)

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
