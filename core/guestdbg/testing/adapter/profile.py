"""What a VMM hands the adapter conformance kit: plain data, no pytest.

The kit checks a VMM's own :class:`~guestdbg.vcpu.VmHandle`/:class:`~guestdbg.vcpu.VcpuHandle`
implementation against ``/dev/kvm``'s semantics through the protocol alone. It cannot know the
VMM's guest, its memory map or how its VMs are freed; the profile says so once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...vcpu import VmHandle


class AdapterUnavailable(Exception):
    """Raised by a profile factory (or ``make_vm``) when this machine cannot run the adapter at
    all (no usable ``/dev/kvm``, a missing tool): the kit skips every check with the message."""


def _keep(vm: VmHandle) -> None:
    """The default ``release``: nothing to free (an emulated VM is garbage once dropped)."""


@dataclass(frozen=True)
class AdapterProfile:
    """How the kit makes, uses and frees the VMs of one adapter."""

    make_vm: Callable[[], VmHandle]
    """A fresh VM, made on the test's thread (the main thread), whose vCPU 0 sits at the start
    of a guest that runs forever at CPL0 / supervisor level without ever leaving KVM_RUN by
    itself (no I/O, MMIO, HLT, exception or other exit), in a loop of more than one
    instruction (a single step must move the PC)."""
    pc_field: str
    """The PC's field in ``struct kvm_regs``: ``"rip"`` on x86, ``"pc"`` on PowerPC."""
    scratch: tuple[int, int]
    """``(gpa, size)``: at least 16 bytes of guest RAM the guest does not use, which the kit may
    overwrite, *ending where guest RAM ends* (no memory slot right after it), so that an access
    running past it must be refused."""
    outside_ram: int
    """A guest-physical address in no memory slot that is also a guest-virtual address vCPU 0
    does not map."""
    release: Callable[[VmHandle], None] = _keep
    """Frees a VM ``make_vm`` made (closes its fds, unmaps its RAM), after each check, with every
    vCPU out of KVM_RUN. Not called for a VM the kit could not get out of KVM_RUN (a kick that
    does nothing): that VM is left as it is."""
    arch: str | None = None
    """The arch or core name a :class:`~guestdbg.session.Session` resolves for this VM
    (``"x86"``, ``"e500mc"``): the kit then also checks that a session attaches, single-steps
    vCPU 0 and detaches through the adapter. None leaves that check out."""
