"""The stub tests' in-process target (``tests/gdb/memtarget.py``) serves GDB here too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gdb"))
