"""Fixtures for session tests: every session a test opens is closed, even when it fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from guestdbg.session import Session


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    """Sessions a test opens are closed (vCPU threads parked) even when it fails."""
    made: list[Session] = []
    yield made
    for s in made:
        s.close()
