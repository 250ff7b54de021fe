"""Check 5, with real GDB: ``gdb-multiarch`` loads the description and lays out the same
registers (names, order, sizes) the stub's ``g`` reply carries.

GDB is the client the stub serves, so its reading of the XML is the one that counts; the
check runs only where ``gdb-multiarch`` is installed and knows the description's
``<architecture>``, i.e. selects it when it loads the description (a description naming an
architecture this GDB was built without is not the plugin's fault; the skip reason says so).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .tdesc import TdescRegister

GDB = "gdb-multiarch"
_TIMEOUT = 60
_ROW = re.compile(r"^ (\S+)\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\S+\s+(\d+)\s+(\d+)\s*$", re.M)
"""A ``maint print remote-registers`` row: Name Nr Rel Offset Size Type Rmt-Nr g/G-Offset."""
_ARCH = re.compile(r'The target architecture is set to "auto" \(currently "([^"]+)"\)')


def _gdb(*commands: str) -> subprocess.CompletedProcess[str]:
    args = [GDB, "-nx", "-batch"]
    for c in commands:
        args += ["-ex", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT, check=False)


def why_not_installed() -> str | None:
    return f"{GDB} is not installed" if shutil.which(GDB) is None else None


@dataclass(frozen=True)
class GdbReading:
    """How GDB read a description: the architecture it selected, its register layout
    (name -> (size in bytes, remote regnum, g/G offset)) and what it printed on stderr."""

    architecture: str
    layout: dict[str, tuple[int, int, int]]
    stderr: str


def read_with_gdb(xml: str) -> GdbReading:
    with tempfile.TemporaryDirectory(prefix="guestdbg-tdesc-") as tmp:
        path = Path(tmp) / "target.xml"
        path.write_text(xml)
        out = _gdb(
            f"set tdesc filename {path}", "show architecture", "maint print remote-registers"
        )
    arch = _ARCH.search(out.stdout)
    rows = {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in _ROW.finditer(out.stdout)}
    return GdbReading(arch[1] if arch else "", rows, out.stderr)


def why_gdb_cannot_judge(reading: GdbReading, architecture: str | None) -> str | None:
    """A description naming an architecture this GDB was built without is not the plugin's
    fault: GDB then falls back to another and its layout says nothing."""
    if not architecture:
        return "the description names no <architecture> for GDB to select"
    if reading.architecture != architecture:
        return (
            f"{GDB} does not know architecture {architecture!r} (it selected "
            f"{reading.architecture or 'none'!r})"
        )
    return None


def check_gdb_agrees(reading: GdbReading, regs: list[TdescRegister]) -> None:
    """Every register is where the stub puts it in ``g``: same remote number, same offset,
    same size."""
    layout, stderr = reading.layout, reading.stderr
    assert "warning" not in stderr.lower() and "error" not in stderr.lower(), (
        f"{GDB} complained about the description: {stderr.strip()[:400]}"
    )
    offset = 0
    for reg in regs:
        want = (reg.bitsize // 8, reg.regnum, offset)
        got = layout.get(reg.name)
        assert got == want, (
            f"{GDB} reads register {reg.name} as (size, remote regnum, g offset) = {got}; "
            f"the stub sends {want}"
        )
        offset += reg.bitsize // 8
