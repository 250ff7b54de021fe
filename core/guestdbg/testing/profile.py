"""What an arch plugin hands the conformance kit (``guestdbg_conformance``): plain data, no pytest.

The kit cannot know an arch's guest programs or which of the guest's own events its kernel turns
into ``KVM_EXIT_DEBUG``; the plugin states them here once, and every generic check derives the
rest from the plugin's capabilities. This module imports nothing from pytest, so a plugin can
build its profile (and a VMM can inspect one) without the test tooling installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..arch import OwnershipPolicy
from ..kvm.uapi import AbiLayout
from ..numbering import ExceptionId
from ..vcpu import VmHandle


class ProfileUnavailable(Exception):
    """Raised by a plugin's ``guestdbg_conformance`` when it cannot make the profile of one core
    on this installation (e.g. that core's emulated host is a separate package that is not
    installed). The kit skips that core's checks that need a profile, with the message, and
    still runs the rest; an arch's other cores are unaffected."""


@dataclass(frozen=True)
class GuestEventCase:
    """One of the guest's own debug events, as the kernel reports it to userspace."""

    name: str
    """What the guest did, e.g. "the guest's own int3"."""
    kvm_run: Callable[[AbiLayout], bytes]
    """The whole ``kvm_run`` image the kernel writes for it: ``exit_reason`` KVM_EXIT_DEBUG and
    the arch's ``kvm_debug_exit_arch``, in the layout's byte order."""
    expected: ExceptionId | None
    """What ``guest_verdict`` must re-inject for it (the plugin's documented answer), or None
    when the plugin documents that the event cannot be the guest's and drops it (``Resume``,
    e.g. a stale match of a host point just removed)."""


@dataclass(frozen=True)
class ConformanceProfile:
    """How the kit exercises one core of an arch."""

    make_vm: Callable[[], VmHandle]
    """A fresh VM, guest loaded and halted, whose guest loops forever: it executes every address
    in ``code_addrs``, reads ``data_addr`` and writes ``data_addr``."""
    code_addrs: Sequence[int]
    """At least (hardware breakpoint slots + 1) distinct instruction addresses in the loop."""
    data_addr: int
    """A word the loop reads and writes, aligned to the largest watch length."""
    outside_ram: int
    """A guest address in no memory slot."""
    guest_events: Sequence[GuestEventCase] = ()
    policy: str = OwnershipPolicy.HOST_PRIORITY
    """The ownership policy the kit's sessions ask for."""
