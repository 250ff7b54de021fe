"""Check 5, with real GDB: ``gdb-multiarch`` loads the description and lays out the same
registers (names, order, sizes) the stub's ``g`` reply carries.

GDB is the client the stub serves, so its reading of the XML is the one that counts; the
check runs only where ``gdb-multiarch`` is installed and knows the description's
``<architecture>`` (a description naming an architecture this GDB was built without is not
the plugin's fault, and says so as the skip reason).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .tdesc import TdescRegister

GDB = "gdb-multiarch"
_TIMEOUT = 60
_ROW = re.compile(r"^ (\S+)\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\S+\s+(\d+)\s+(\d+)\s*$", re.M)
"""A ``maint print remote-registers`` row: Name Nr Rel Offset Size Type Rmt-Nr g/G-Offset."""


def _gdb(*commands: str) -> subprocess.CompletedProcess[str]:
    args = [GDB, "-nx", "-batch"]
    for c in commands:
        args += ["-ex", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT, check=False)


def why_not_runnable(architecture: str | None) -> str | None:
    """Why real GDB cannot check this description here, or None when it can."""
    if shutil.which(GDB) is None:
        return f"{GDB} is not installed"
    if not architecture:
        return "the description names no <architecture> for GDB to select"
    out = _gdb(f"set architecture {architecture}")
    if out.returncode != 0 or out.stderr.strip():
        return f"{GDB} does not know architecture {architecture!r}: {out.stderr.strip()[:200]}"
    return None


def gdb_remote_layout(xml: str) -> tuple[dict[str, tuple[int, int, int]], str]:
    """name -> (size in bytes, remote regnum, g/G offset) as GDB reads the description; and
    GDB's stderr."""
    with tempfile.TemporaryDirectory(prefix="guestdbg-tdesc-") as tmp:
        path = Path(tmp) / "target.xml"
        path.write_text(xml)
        out = _gdb(f"set tdesc filename {path}", "maint print remote-registers")
    rows = {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in _ROW.finditer(out.stdout)}
    return rows, out.stderr


def check_gdb_agrees(xml: str, regs: list[TdescRegister]) -> None:
    """Every register is where the stub puts it in ``g``: same remote number, same offset,
    same size."""
    layout, stderr = gdb_remote_layout(xml)
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
