"""Where plugins build the guest programs of their conformance profiles."""

from __future__ import annotations

from pathlib import Path

from ..guest_build import cache_dir


def build_dir(arch: str) -> Path:
    """A writable directory for ``arch``'s conformance guests
    (``$XDG_CACHE_HOME/guestdbg/conformance/<arch>``); builds there are cached by content."""
    return cache_dir("conformance", arch)
