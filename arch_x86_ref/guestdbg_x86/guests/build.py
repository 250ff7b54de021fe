"""Building x86-64 guest programs: GNU as (through ``gcc -c``, which preprocesses ``.S``) and
GNU ld, linked at 0x10000 (above :data:`guestdbg_x86.boot.BOOT_TABLES`), cached by content.

The ELF's name carries a hash of the source, the flags and the tools' versions, so a rebuild
happens only when one of them changes, and concurrent builds race harmlessly (atomic rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from guestdbg.errors import GuestDebugError

CC = "gcc"
LD = "ld"
CC_FLAGS = ("-c",)
LD_FLAGS = ("-N", "-Ttext=0x10000", "-e", "start", "--build-id=none", "--no-warn-rwx-segments")
PACKAGE_DIR = Path(__file__).resolve().parent


class GuestBuildError(GuestDebugError):
    """The guest program could not be assembled or linked (the tools' output says why)."""


@cache
def _tool_version(tool: str) -> str:
    if shutil.which(tool) is None:
        raise GuestBuildError(f"{tool} not found: install gcc and binutils")
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else tool


def _fingerprint(source: Path) -> str:
    h = hashlib.sha256()
    for part in (CC_FLAGS, LD_FLAGS, (_tool_version(CC), _tool_version(LD))):
        h.update(repr(part).encode())
    h.update(source.read_bytes())
    return h.hexdigest()[:16]


def build(source: Path, out_dir: Path) -> Path:
    """The ELF built from ``source`` into ``out_dir`` (reused when nothing changed)."""
    source = Path(source).resolve()
    if not source.is_file():
        raise GuestBuildError(f"no guest source {source}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"{source.stem}-{_fingerprint(source)}.elf"
    if elf.exists():
        return elf
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        obj = Path(tmp) / f"{source.stem}.o"
        tmp_elf = Path(tmp) / elf.name
        _run([CC, *CC_FLAGS, "-o", str(obj), str(source)])
        _run([LD, *LD_FLAGS, "-o", str(tmp_elf), str(obj)])
        os.replace(tmp_elf, elf)
    return elf


def _run(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise GuestBuildError(f"{' '.join(cmd)} failed:\n{out.stderr.strip()}")
