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

# e500 cores: 2 IAC + 2 DAC (KVMPPC_BOOKE_IAC_NUM/DAC_NUM for CONFIG_PPC_E500); KVM has no
# capability for the counts on ppc, so they are per core here
# (docs/reference/kvm-guest-debug-abi.md §3.1, §3.10).
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

CORES = (
    CoreInfo("e500mc", "Freescale e500mc, KVM BookE-HV (bookehv)", E500_CAPS),
    CoreInfo("e500v2", "Freescale e500v2, KVM BookE-PR (booke PR)", E500_CAPS),
)

INFO = ArchInfo(
    name="ppc_booke",
    kvm_host_arch="powerpc",
    description="PowerPC BookE (e500mc, e500v2)",
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

    return gdb_arch_for(core.name)


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
