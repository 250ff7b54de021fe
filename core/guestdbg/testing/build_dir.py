"""Where plugins build the guest programs of their conformance profiles.

Guest builds are cached by content (each plugin's builder names its ELF by a hash of what went
into it), so one directory per user serves every run; a machine without a writable home gets a
fresh temporary directory instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def build_dir(arch: str) -> Path:
    """A writable directory for ``arch``'s conformance guests (``$XDG_CACHE_HOME/guestdbg``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "guestdbg" / "conformance" / arch
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"guestdbg-conformance-{arch}-"))
