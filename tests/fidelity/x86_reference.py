"""Skipping a test that needs this machine's /dev/kvm as the x86-64 reference, saying why."""

from __future__ import annotations

import pytest

from guestdbg_x86.fidelity.hosts import kvm_unusable


def require_kvm() -> None:
    reason = kvm_unusable()
    if reason is not None:
        pytest.skip(f"no x86-64 reference: {reason}")
