"""Building x86-64 guest programs: GNU as (through ``gcc -c``, which preprocesses ``.S``) and
GNU ld, linked at 0x10000 (above :data:`guestdbg_x86.boot.BOOT_TABLES`), cached by content.
The flags and the tools' versions go into the ELF's content hash (:mod:`guestdbg.guest_build`
does the caching).
"""

from __future__ import annotations

from pathlib import Path

from guestdbg.guest_build import GuestBuildError, cached_build

__all__ = ["PACKAGE_DIR", "GuestBuildError", "build"]

CC = "gcc"
LD = "ld"
CC_FLAGS = ("-c",)
LD_FLAGS = ("-N", "-Ttext=0x10000", "-e", "start", "--build-id=none", "--no-warn-rwx-segments")
PACKAGE_DIR = Path(__file__).resolve().parent


def build(source: Path, out_dir: Path) -> Path:
    """The ELF built from ``source`` into ``out_dir`` (reused when nothing changed)."""
    source = Path(source).resolve()

    def commands(obj: Path, elf: Path) -> list[list[str]]:
        return [
            [CC, *CC_FLAGS, "-o", str(obj), str(source)],
            [LD, *LD_FLAGS, "-o", str(elf), str(obj)],
        ]

    return cached_build(
        source,
        out_dir,
        tools=(CC, LD),
        install_hint="install gcc and binutils",
        flags=(CC_FLAGS, LD_FLAGS),
        inputs=(),
        commands=commands,
    )
