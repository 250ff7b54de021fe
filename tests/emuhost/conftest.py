"""The emulated e500 host's conformance tests: one machine per test, both kernel flavours."""

from __future__ import annotations

import pytest

from .machine import CORES


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest) -> str:
    """e500mc = BookE-HV (kvm_e500mc), e500v2 = BookE-PR (kvm_e500v2)."""
    return str(request.param)
