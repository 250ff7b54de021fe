"""Whether a plugin's profile gives the kit what its checks need, stated before they run.

A profile that is too small for the caps (fewer code addresses than slots + 1, a data word not
aligned to the largest watch length, an ``outside_ram`` that is in fact memory) would make the
other checks fail for the profile's sake, not the plugin's; this says so directly.
"""

from __future__ import annotations

from ..capabilities import DebugCapabilities
from ..errors import BadAddress
from ..session.session import Session
from .profile import ConformanceProfile


def profile_problems(profile: ConformanceProfile, caps: DebugCapabilities) -> list[str]:
    out = []
    addrs = list(profile.code_addrs)
    need = caps.hw_breakpoints + 1
    if len(set(addrs)) != len(addrs):
        out.append(f"code_addrs repeat: {[hex(a) for a in addrs]}")
    if len(set(addrs)) < max(need, 2):
        out.append(
            f"code_addrs has {len(set(addrs))} distinct addresses; the caps need "
            f"{max(need, 2)} (hardware breakpoint slots + 1)"
        )
    largest = max(caps.watch_lengths, default=1)
    if profile.data_addr % largest:
        out.append(f"data_addr {profile.data_addr:#x} is not aligned to {largest} bytes")
    return out


def outside_ram_is_memory(session: Session, profile: ConformanceProfile) -> bool:
    """True when ``outside_ram`` translates to guest memory the VM can read."""
    vcpu = session.vm.vcpus[0]
    gpa = vcpu.translate(profile.outside_ram)
    if gpa is None:
        return False
    try:
        session.vm.read_phys(gpa, 1)
    except BadAddress:
        return False
    return True
