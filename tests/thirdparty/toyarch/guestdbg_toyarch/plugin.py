"""The toy arch's hook implementations (entry point ``guestdbg.arch: toy``).

Everything here comes from guestdbg's public modules; nothing from the in-tree arch plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guestdbg.arch import ArchInfo, ArchVcpuDebug, CoreInfo, HostFactory, VcpuDebugRequest
from guestdbg.capabilities import DebugCapabilities
from guestdbg.gdb.target import GdbArch
from guestdbg.hookspecs import hookimpl
from guestdbg.points import PointKind

from . import abi, numbering

if TYPE_CHECKING:
    from guestdbg.testing.profile import ConformanceProfile

TOY_CAPS = DebugCapabilities(
    hw_breakpoints=2,
    hw_watchpoints=1,
    watch_kinds=frozenset({PointKind.WATCH_WRITE, PointKind.WATCH_READ, PointKind.WATCH_ACCESS}),
    watch_lengths=(4,),
    watch_aligned=True,
    watch_before_access=False,
    hw_break_lengths=(4,),
    single_step=True,
    sw_break_size=4,
)

INFO = ArchInfo(
    name="toy",
    kvm_host_arch="toy",
    description="a made-up arch from outside the tree (pure-Python CPU, toy KVM)",
    cores=(CoreInfo("toy1", "the toy CPU: 2 breakpoint slots, 1 watch slot", TOY_CAPS),),
    numbering=numbering.TABLE,
    layout=abi.layout,
    default_core="toy1",
)


@hookimpl
def guestdbg_arch() -> ArchInfo:
    return INFO


@hookimpl
def guestdbg_vcpu_debug(request: VcpuDebugRequest) -> ArchVcpuDebug | None:
    if request.arch.name != INFO.name:
        return None
    from .debugops import ToyVcpuDebug

    return ToyVcpuDebug(request)


@hookimpl
def guestdbg_gdb_arch(arch: ArchInfo, core: CoreInfo) -> GdbArch | None:
    if arch.name != INFO.name:
        return None
    from .gdb_arch import ToyGdbArch

    return ToyGdbArch()


@hookimpl
def guestdbg_emulated_hosts() -> list[HostFactory]:
    from .vm import HOST

    return [HOST]


@hookimpl
def guestdbg_conformance(arch: ArchInfo, core: CoreInfo) -> ConformanceProfile | None:
    if arch.name != INFO.name:
        return None
    from .conformance import profile

    return profile()
