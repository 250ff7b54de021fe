"""Guest programs for the emulated e500 host: the builder and what the product ships with it."""

from __future__ import annotations

from .build import GuestBuildError, build

__all__ = ["GuestBuildError", "build"]
