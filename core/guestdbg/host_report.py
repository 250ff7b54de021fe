"""What a real KVM host delivers for one arch's debugging, as found by asking and by probing it.

A kernel states some of its debug facilities (``KVM_CAP_SET_GUEST_DEBUG2``'s control bits) and
not others: whether an ``int3`` in the guest really leaves ``KVM_RUN`` as ``KVM_EXIT_DEBUG``,
whether a data breakpoint ever fires. Where the kernel cannot be trusted to say, an arch plugin
probes it with a tiny VM of its own and refuses, with the reason, what the host does not deliver
(:attr:`guestdbg.capabilities.DebugCapabilities.refused`). This module holds what such a probe
found, for sessions and for ``guestdbg plugins --probe`` (hook ``guestdbg_host_report``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .capabilities import DebugCapabilities


@dataclass(frozen=True, slots=True)
class ProbeFinding:
    """One facility tried on the host: did its exit reach userspace as a debug exit?"""

    feature: str
    """What was tried, e.g. ``int3 at CPL0 (KVM_GUESTDBG_USE_SW_BP)``."""
    delivered: bool
    detail: str
    """What the kernel did, e.g. ``KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation failure)``."""
    seconds: float
    """How long the try took (its KVM_RUN and the ioctls around it)."""


@dataclass(frozen=True, slots=True)
class HostReport:
    """One arch core on this machine's KVM: the capabilities it really has, and why."""

    device: str
    kernel: str
    """The KVM module serving the device (``kvm_intel``, ``kvm_amd``, ``kvm_pvm``...)."""
    caps: DebugCapabilities
    """The core's capabilities as this host delivers them (refusals included)."""
    findings: tuple[ProbeFinding, ...] = ()
    seconds: float = 0.0
    """The whole probe: creating the probe VM, every try, closing it."""
    unprobed: str = ""
    """Why the host could not be probed (then ``caps`` rests on what the kernel says and on
    what the plugin knows about ``kernel``)."""

    def lines(self) -> list[str]:
        """The report as ``guestdbg plugins --probe`` prints it."""
        head = f"{self.device} ({self.kernel})"
        if self.unprobed:
            out = [f"{head}: not probed: {self.unprobed}"]
        else:
            out = [f"{head}: probed in {self.seconds * 1e3:.1f} ms"]
        for f in self.findings:
            verdict = "delivered" if f.delivered else "NOT delivered"
            out.append(f"  {f.feature}: {verdict}: {f.detail} ({f.seconds * 1e3:.2f} ms)")
        by_reason: dict[str, list[str]] = {}
        for kind, why in self.caps.refused:
            by_reason.setdefault(why, []).append(kind.value)
        for why, kinds in by_reason.items():
            out.append(f"  refused {', '.join(kinds)}: {why}")
        return out


KVM_MODULES = ("kvm_pvm", "kvm_intel", "kvm_amd", "kvm_hv", "kvm_pr")
"""Modules that serve ``/dev/kvm``, the most specific first (kvm_pvm loads beside kvm_intel or
kvm_amd on some hosts)."""


def kvm_module(sysfs: str = "/sys/module") -> str:
    """The module serving this machine's ``/dev/kvm`` (``kvm_pvm`` for the paravirtual KVM of
    docs/reference/this-machine-kvm.md), or ``kvm`` when none of :data:`KVM_MODULES` is loaded."""
    for name in KVM_MODULES:
        if os.path.isdir(os.path.join(sysfs, name)):
            return name
    return "kvm"


def is_real_kvm(vm: object) -> bool:
    """Whether ``vm`` runs on a real ``/dev/kvm`` rather than an emulated host: guestdbg's
    :class:`~guestdbg.kvm.device.KvmVm`, or a VMM's own adapter whose ``fd`` is a KVM VM file
    descriptor (``/proc/self/fd/N`` reads ``anon_inode:kvm-vm``)."""
    from .kvm.device import KvmVm

    if isinstance(vm, KvmVm):
        return True
    fd = getattr(vm, "fd", None)
    if not isinstance(fd, int) or fd < 0:
        return False
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:kvm-vm"
    except OSError:
        return False
