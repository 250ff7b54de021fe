"""Building guest programs: GNU as + ld for e500, cached by content.

``build(source, out_dir)`` assembles one ``.S`` file with ``powerpc-linux-gnu-as -mregnames
-me500mc`` and links it with ``powerpc-linux-gnu-ld`` and a linker script: ``link.ld`` next to
the source if there is one, else this package's. Includes are looked up next to the source and in
this package (``hostio.inc``). The ELF's name carries a hash of everything that goes into it
(source, includes, linker script, flags, tool versions), so a rebuild happens only when one of
them changes, and concurrent builds of the same guest race harmlessly (atomic rename).
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

AS = "powerpc-linux-gnu-as"
LD = "powerpc-linux-gnu-ld"
AS_FLAGS = ("-mregnames", "-me500mc", "-mbig-endian")
LD_FLAGS = ("--no-warn-rwx-segments", "-N")
PACKAGE_DIR = Path(__file__).resolve().parent


class GuestBuildError(GuestDebugError):
    """The guest program could not be assembled or linked (the tools' output says why)."""


@cache
def _tool_version(tool: str) -> str:
    if shutil.which(tool) is None:
        raise GuestBuildError(
            f"{tool} not found: install binutils-powerpc-linux-gnu (tools/bootstrap.sh does)"
        )
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else tool


def _include_dirs(source: Path) -> list[Path]:
    return [source.parent, PACKAGE_DIR]


def _linker_script(source: Path) -> Path:
    local = source.parent / "link.ld"
    return local if local.exists() else PACKAGE_DIR / "link.ld"


def _fingerprint(source: Path) -> str:
    h = hashlib.sha256()
    for part in (AS_FLAGS, LD_FLAGS, (_tool_version(AS), _tool_version(LD))):
        h.update(repr(part).encode())
    h.update(source.read_bytes())
    h.update(_linker_script(source).read_bytes())
    for d in _include_dirs(source):
        for inc in sorted(d.glob("*.inc")):
            h.update(inc.name.encode())
            h.update(inc.read_bytes())
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
        includes = [f"-I{d}" for d in _include_dirs(source)]
        _run([AS, *AS_FLAGS, *includes, "-o", str(obj), str(source)])
        _run([LD, *LD_FLAGS, "-T", str(_linker_script(source)), "-o", str(tmp_elf), str(obj)])
        os.replace(tmp_elf, elf)
    return elf


def _run(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise GuestBuildError(f"{' '.join(cmd)} failed:\n{out.stderr.strip()}")
