"""The x86 reference plugin's hook implementations (entry point ``guestdbg.arch: x86``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guestdbg.arch import ArchInfo, ArchVcpuDebug, CoreInfo, HostFactory, VcpuDebugRequest
from guestdbg.capabilities import DebugCapabilities
from guestdbg.gdb.target import GdbArch
from guestdbg.hookspecs import hookimpl
from guestdbg.points import PointKind

from . import abi, numbering

if TYPE_CHECKING:
    from guestdbg.host_report import HostReport
    from guestdbg.testing.profile import ConformanceProfile

# DR0-3 shared by breakpoints and watchpoints; no read-only watch in DR7 RW (QEMU: ENOSYS).
X86_CAPS = DebugCapabilities(
    hw_breakpoints=4,
    hw_watchpoints=4,
    shared_slots=True,
    watch_kinds=frozenset({PointKind.WATCH_WRITE, PointKind.WATCH_ACCESS}),
    watch_lengths=(1, 2, 4, 8),
    watch_aligned=True,
    hw_break_lengths=(1,),
    single_step=True,
    step_blocks_irqs=True,
    sw_break_size=1,
)

INFO = ArchInfo(
    name="x86",
    kvm_host_arch="x86_64",
    description="x86-64 reference (DR0-7, #DB/#BP reinjection)",
    cores=(CoreInfo("x86_64", "x86-64 long mode", X86_CAPS),),
    numbering=numbering.TABLE,
    layout=abi.layout,
    default_core="x86_64",
)


@hookimpl
def guestdbg_arch() -> ArchInfo:
    return INFO


@hookimpl
def guestdbg_vcpu_debug(request: VcpuDebugRequest) -> ArchVcpuDebug | None:
    if request.arch.name != INFO.name:
        return None
    from .debugops import X86VcpuDebug

    return X86VcpuDebug(request)


@hookimpl
def guestdbg_gdb_arch(arch: ArchInfo, core: CoreInfo) -> GdbArch | None:
    if arch.name != INFO.name:
        return None
    from .gdb_arch import X86GdbArch

    return X86GdbArch()


@hookimpl
def guestdbg_host_report(arch: ArchInfo, core: CoreInfo) -> HostReport | None:
    from guestdbg.kvm.device import machine_kvm_arch

    if arch.name != INFO.name or machine_kvm_arch() != arch.kvm_host_arch:
        return None
    from . import host_probe

    return host_probe.report(core.caps)


@hookimpl
def guestdbg_kvm_hosts() -> list[HostFactory]:
    from guestdbg.kvm.device import machine_kvm_arch

    if machine_kvm_arch() != INFO.kvm_host_arch:
        return []
    from .kvm_host import HOST

    return [HOST]


@hookimpl
def guestdbg_emulated_hosts() -> list[HostFactory]:
    from .emuhost.factory import HOST

    return [HOST]


@hookimpl
def guestdbg_conformance(arch: ArchInfo, core: CoreInfo) -> ConformanceProfile | None:
    if arch.name != INFO.name:
        return None
    from .conformance import profile

    return profile()
