"""The emulated e500 host's conformance tests: one machine per test, both kernel flavours.

A test taking ``core`` runs on e500mc (BookE-HV, kvm_e500mc) and e500v2 (BookE-PR,
kvm_e500v2); in a module that sets ``ALSO_64BIT = True`` also on e5500 and e6500, the same
kvm_e500mc on a 64-bit host, running these 32-bit guests in 32-bit mode (MSR[CM] = 0). Modules
whose expectations are 32-bit ones (register widths, sregs features, the guest picking its
handlers by PVR) leave it off; tests/emuhost64 has the 64-bit counterparts.
"""

from __future__ import annotations

import pytest

from .machine import CORES, CORES64


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "core" in metafunc.fixturenames:
        also_64 = getattr(metafunc.module, "ALSO_64BIT", False)
        metafunc.parametrize("core", (*CORES, *CORES64) if also_64 else CORES)
