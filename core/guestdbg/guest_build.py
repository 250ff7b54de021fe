"""Building guest programs with GNU tools, cached by content: what every arch's builder shares.

Tests, the demo, the examples and the conformance kit all build small bare-metal guests from
assembly, many times per run and from several processes at once. An ELF's name carries a hash of
everything that goes into it (the source, the files it includes, the flags, the tools'
versions), so a rebuild happens only when one of them changes, and concurrent builds of the same
guest race harmlessly (each links in a private directory and renames atomically). An arch's
builder only says which tools run with which flags; this module does the rest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path

from .errors import GuestDebugError

Commands = Callable[[Path, Path], Sequence[Sequence[str]]]
"""``commands(obj, elf)``: the command lines that turn the source into ``obj`` and link ``elf``."""


class GuestBuildError(GuestDebugError):
    """The guest program could not be assembled or linked (the tools' output says why)."""


@cache
def tool_version(tool: str, install_hint: str) -> str:
    """The first line of ``tool --version``; GuestBuildError naming ``install_hint`` when the
    tool is missing."""
    if shutil.which(tool) is None:
        raise GuestBuildError(f"{tool} not found: {install_hint}")
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else tool


def cached_build(
    source: Path,
    out_dir: Path,
    *,
    tools: Sequence[str],
    install_hint: str,
    flags: Iterable[object],
    inputs: Iterable[Path],
    commands: Commands,
) -> Path:
    """The ELF built from ``source`` into ``out_dir`` (reused when nothing changed).

    ``flags`` and the versions of ``tools`` go into the hash as text; ``inputs`` (linker script,
    include files) by name and content."""
    source = Path(source).resolve()
    if not source.is_file():
        raise GuestBuildError(f"no guest source {source}")
    h = hashlib.sha256()
    for part in (*flags, tuple(tool_version(t, install_hint) for t in tools)):
        h.update(repr(part).encode())
    h.update(source.read_bytes())
    for path in inputs:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"{source.stem}-{h.hexdigest()[:16]}.elf"
    if elf.exists():
        return elf
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        obj = Path(tmp) / f"{source.stem}.o"
        tmp_elf = Path(tmp) / elf.name
        for cmd in commands(obj, tmp_elf):
            out = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise GuestBuildError(f"{' '.join(cmd)} failed:\n{out.stderr.strip()}")
        os.replace(tmp_elf, elf)
    return elf


def cache_dir(*parts: str) -> Path:
    """A writable per-user directory for built guests (``$XDG_CACHE_HOME/guestdbg/<parts>``),
    or a fresh temporary directory on a machine without a writable home."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base, "guestdbg", *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"guestdbg-{'-'.join(parts)}-"))
