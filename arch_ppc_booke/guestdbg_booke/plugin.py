"""The BookE arch plugin's hook implementations (entry point ``guestdbg.arch: ppc_booke``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guestdbg.arch import ArchInfo, ArchVcpuDebug, CoreInfo, HostFactory, VcpuDebugRequest
from guestdbg.capabilities import DebugCapabilities
from guestdbg.demo.guest import DemoGuest
from guestdbg.gdb.target import GdbArch
from guestdbg.hookspecs import hookimpl

from . import abi, numbering

if TYPE_CHECKING:
    from guestdbg.testing.profile import ConformanceProfile

# Every e500-family core KVM serves has 2 IAC + 2 DAC: KVMPPC_BOOKE_IAC_NUM/DAC_NUM are 2/2 for
# Freescale BookE (kvm_host.h, CONFIG_PPC_FSL_BOOK3E, which the 64-bit PPC_BOOK3E_64 selects
# too) and CONFIG_PPC_ADV_DEBUG_IACS is 2 outside 44x. KVM has no capability for the counts on
# ppc, so they are per core here (docs/reference/kvm-debug-abi.md §3.1, §3.10, §9.1).
E500_CAPS = DebugCapabilities(
    hw_breakpoints=2,
    hw_watchpoints=2,
    watch_lengths=(1, 2, 4, 8),
    watch_aligned=True,
    watch_before_access=True,
    hw_break_lengths=(4,),
    single_step=True,
    step_blocks_irqs=False,
    sw_break_size=4,
)
"""The same for the 32-bit and the 64-bit cores: ``kvm_arch_vcpu_ioctl_set_guest_debug`` and
``kvmppc_booke_add_breakpoint``/``_add_watchpoint`` take a ``__u64`` address whatever the
core, and nothing in them depends on the width (docs/reference/kvm-debug-abi.md §9.1)."""

CORES = (
    CoreInfo("e500mc", "Freescale e500mc, KVM BookE-HV (bookehv)", E500_CAPS, 32),
    CoreInfo("e5500", "Freescale e5500, 64-bit, KVM BookE-HV (kvm_e500mc)", E500_CAPS, 64),
    CoreInfo(
        "e6500", "Freescale e6500, 64-bit with AltiVec, KVM BookE-HV (kvm_e500mc)", E500_CAPS, 64
    ),
    CoreInfo("e500v2", "Freescale e500v2, KVM BookE-PR (booke PR)", E500_CAPS, 32),
)
"""The cores ``kvm_e500mc`` (e500mc.c ``kvmppc_core_check_processor_compat``: e500mc, e5500,
and e6500 when the host has CONFIG_ALTIVEC) and ``kvm_e500`` (e500v2) run guests on."""

INFO = ArchInfo(
    name="ppc_booke",
    kvm_host_arch="powerpc",
    description=(
        "PowerPC BookE (BookE-HV: e500mc 32-bit, e5500 and e6500 64-bit; BookE-PR: e500v2 32-bit)"
    ),
    cores=CORES,
    numbering=numbering.TABLE,
    layout=abi.layout,
    default_core="e500mc",
)


@hookimpl
def guestdbg_arch() -> ArchInfo:
    return INFO


@hookimpl
def guestdbg_vcpu_debug(request: VcpuDebugRequest) -> ArchVcpuDebug | None:
    if request.arch.name != INFO.name:
        return None
    from .debugops import BookeVcpuDebug

    return BookeVcpuDebug(request)


@hookimpl
def guestdbg_gdb_arch(arch: ArchInfo, core: CoreInfo) -> GdbArch | None:
    if arch.name != INFO.name:
        return None
    from .gdb_arch import gdb_arch_for

    return gdb_arch_for(core)


@hookimpl
def guestdbg_emulated_hosts() -> list[HostFactory]:
    from .emuhost.factory import HOSTS

    return list(HOSTS)


@hookimpl
def guestdbg_demo(arch: ArchInfo, core: CoreInfo) -> DemoGuest | None:
    if arch.name != INFO.name:
        return None
    from .guests.demo_guest import demo_guest

    return demo_guest(core.name)


@hookimpl
def guestdbg_conformance(arch: ArchInfo, core: CoreInfo) -> ConformanceProfile | None:
    if arch.name != INFO.name:
        return None
    from .conformance import profile

    return profile(core.name)
