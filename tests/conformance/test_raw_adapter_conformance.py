"""The raw-ioctl adapter of examples/raw_kvm_adapter.py passes the adapter conformance kit on this
machine's /dev/kvm (skipped with the reason where that is unusable): the whole test file a VMM
writes for its own adapter is the class below."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from raw_kvm_adapter import adapter_profile

from guestdbg.testing import AdapterConformance


class TestRawKvmAdapter(AdapterConformance):
    profile = adapter_profile
