"""Fixtures of the x86 plugin tests: built guests, and machines on either host."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest

from . import machines
from .machines import Machine


@pytest.fixture(scope="session")
def x86_guests(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], pathlib.Path]:
    out = tmp_path_factory.mktemp("x86_guests")
    built: dict[str, pathlib.Path] = {}

    def get(name: str) -> pathlib.Path:
        if name not in built:
            built[name] = machines.build(name, out)
        return built[name]

    return get


@pytest.fixture(params=machines.KINDS)
def host_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "kvm":
        reason = machines.kvm_unusable()
        if reason is not None:
            pytest.skip(reason)
    return kind


@pytest.fixture
def make_machine(
    host_kind: str, x86_guests: Callable[[str], pathlib.Path]
) -> Iterator[Callable[[str], Machine]]:
    made: list[Machine] = []

    def make(guest: str) -> Machine:
        elf = x86_guests(guest)
        m = machines.emulated(elf) if host_kind == "emulated" else machines.real(elf)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()
