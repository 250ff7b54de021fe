"""Every VMM adapter in the repository passes the adapter conformance kit."""

from __future__ import annotations

from guestdbg.testing import AdapterConformance

from . import adapter_profiles


class TestEmulatedE500mcAdapter(AdapterConformance):
    profile = adapter_profiles.emulated_e500mc


class TestEmulatedX86Adapter(AdapterConformance):
    profile = adapter_profiles.emulated_x86


class TestKvmDeviceAdapter(AdapterConformance):
    profile = adapter_profiles.kvm_device
