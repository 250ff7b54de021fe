"""Guest programs the x86 plugin ships (the conformance guest) and their builder."""

from __future__ import annotations

from .build import GuestBuildError, build

__all__ = ["GuestBuildError", "build"]
