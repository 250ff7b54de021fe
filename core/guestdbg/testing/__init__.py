"""The arch-plugin conformance kit: generic contract tests any arch plugin runs on itself.

A porter's whole conformance test file::

    from guestdbg.testing import ArchConformance

    class TestToyConformance(ArchConformance):
        arch = "toy"

The plugin answers ``guestdbg_conformance`` with a :class:`ConformanceProfile` (a VM factory,
addresses in its guest's loop, the guest's own debug events); the kit derives everything else
from the plugin's capabilities. This package is also a pytest plugin
(``pytest_plugins = ["guestdbg.testing"]`` or ``-p guestdbg.testing``) providing the fixtures
``guestdbg_registry``, ``conformance_arch``, ``guestdbg_core_name``, ``conformance_core``,
``conformance_profile`` and ``conformance_session``.

:class:`AdapterConformance` is its sibling for VMMs: it checks a VMM's own
``VmHandle``/``VcpuHandle`` adapter against ``/dev/kvm``'s semantics
(:mod:`guestdbg.testing.adapter`).

Importing ``guestdbg`` never imports this package (nor pytest); plugins build their profiles
from :mod:`guestdbg.testing.profile`, which needs no pytest either.
"""

from __future__ import annotations

from .adapter import AdapterConformance, AdapterProfile, AdapterUnavailable
from .fixtures import (
    conformance_arch,
    conformance_core,
    conformance_profile,
    conformance_session,
    guestdbg_core_name,
    guestdbg_registry,
)
from .profile import ConformanceProfile, GuestEventCase, ProfileUnavailable
from .suite import ArchConformance

__all__ = [
    "AdapterConformance",
    "AdapterProfile",
    "AdapterUnavailable",
    "ArchConformance",
    "ConformanceProfile",
    "GuestEventCase",
    "ProfileUnavailable",
    "conformance_arch",
    "conformance_core",
    "conformance_profile",
    "conformance_session",
    "guestdbg_core_name",
    "guestdbg_registry",
]
