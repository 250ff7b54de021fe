"""Fixtures of the BookE plugin tests: both kernel flavours, and sessions closed after use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emuhost.machine import CORES

from guestdbg.session.session import Session
from guestdbg.vcpu import VmHandle

MakeSession = Callable[..., Session]


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest) -> str:
    """e500mc = BookE-HV (kvm_e500mc), e500v2 = BookE-PR (kvm_e500v2)."""
    return str(request.param)


@pytest.fixture
def session() -> Iterator[MakeSession]:
    """``session(vm, core, **options)``: a Session whose vCPU threads end with the test."""
    made: list[Session] = []

    def make(vm: VmHandle, core: str, **options: Any) -> Session:
        s = Session(vm, "ppc_booke", core, **options)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
