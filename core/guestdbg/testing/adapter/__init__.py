"""The adapter conformance kit: checks a VMM's own ``VmHandle``/``VcpuHandle`` against
``/dev/kvm``'s semantics, through the protocol alone.

A VMM's whole test file::

    from guestdbg.testing import AdapterConformance
    from myvmm.debug import adapter_profile

    class TestMyVmmAdapter(AdapterConformance):
        profile = adapter_profile

``adapter_profile()`` returns an :class:`AdapterProfile` (a factory of VMs whose vCPU 0 sits
at the start of a guest spinning without exits, the PC's field in ``struct kvm_regs``, scratch
RAM at the end of guest RAM, an address outside it, how to free a VM) or raises
:class:`AdapterUnavailable` when this machine cannot run the adapter (the kit is then skipped
with the reason). The sibling of :class:`~guestdbg.testing.ArchConformance`, which checks an
arch plugin.
"""

from __future__ import annotations

from .profile import AdapterProfile, AdapterUnavailable
from .suite import AdapterConformance

__all__ = ["AdapterConformance", "AdapterProfile", "AdapterUnavailable"]
