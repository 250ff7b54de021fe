"""The kit's fixtures for ``pytest_plugins = ["guestdbg.testing"]`` (or ``-p guestdbg.testing``).

They serve tests outside :class:`~guestdbg.testing.suite.ArchConformance` too: a porter's own
test names its arch with a module-level ``guestdbg_arch = "<name>"`` (or a class attribute
``arch``) and gets the registry, the arch, a core (the default one unless the test is
parametrized with ``guestdbg_core_name``), its profile and a session on a fresh VM.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..arch import ArchInfo, CoreInfo
from ..plugins import Registry
from ..session.session import Session
from .profile import ConformanceProfile, ProfileUnavailable
from .resolve import arch_info, profile_for, registry_for
from .sessions import open_session


def _arch_name(request: pytest.FixtureRequest) -> str:
    for holder in (request.cls, request.module):
        name = getattr(holder, "arch", None) or getattr(holder, "guestdbg_arch", None)
        if isinstance(name, str):
            return name
    pytest.fail(
        'name the arch under test: guestdbg_arch = "<name>" in the test module', pytrace=False
    )


@pytest.fixture
def guestdbg_registry(request: pytest.FixtureRequest) -> Registry:
    return registry_for(tuple(getattr(request.cls, "extra_plugins", ())))


@pytest.fixture
def conformance_arch(request: pytest.FixtureRequest, guestdbg_registry: Registry) -> ArchInfo:
    try:
        return arch_info(guestdbg_registry, _arch_name(request))
    except LookupError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def guestdbg_core_name(conformance_arch: ArchInfo) -> str:
    return conformance_arch.core(None).name


@pytest.fixture
def conformance_core(conformance_arch: ArchInfo, guestdbg_core_name: str) -> CoreInfo:
    return conformance_arch.core(guestdbg_core_name)


@pytest.fixture
def conformance_profile(
    guestdbg_registry: Registry, conformance_arch: ArchInfo, conformance_core: CoreInfo
) -> ConformanceProfile:
    try:
        return profile_for(guestdbg_registry, conformance_arch, conformance_core)
    except ProfileUnavailable as e:
        pytest.skip(f"no profile for core {conformance_core.name!r} here: {e}")


@pytest.fixture
def conformance_session(
    guestdbg_registry: Registry,
    conformance_arch: ArchInfo,
    conformance_core: CoreInfo,
    conformance_profile: ConformanceProfile,
) -> Iterator[Session]:
    with open_session(
        guestdbg_registry, conformance_arch, conformance_core, conformance_profile
    ) as session:
        yield session
