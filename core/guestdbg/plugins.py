"""Finding arch plugins: pluggy over the ``guestdbg.arch`` entry-point group.

This is the only place the core learns about arches, and it does so exactly as it would for a
third-party plugin: by entry point, never by import. Hooks are resolved here, once; callers keep
the returned objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pluggy

from . import hookspecs
from .arch import ArchInfo, ArchVcpuDebug, CoreInfo, HostFactory, VcpuDebugRequest
from .errors import GuestDebugError, UnknownArch

if TYPE_CHECKING:
    from .gdb.target import GdbArch
    from .testing.profile import ConformanceProfile

ENTRY_POINT_GROUP = "guestdbg.arch"


@dataclass
class Registry:
    pm: pluggy.PluginManager
    arches: dict[str, ArchInfo] = field(default_factory=dict)

    def resolve(self, name: str) -> tuple[ArchInfo, CoreInfo]:
        """Find an arch by its name or by one of its cores' names (``x86``, ``e500mc``)."""
        if name in self.arches:
            info = self.arches[name]
            return info, info.core(None)
        for info in self.arches.values():
            for core in info.cores:
                if core.name == name:
                    return info, core
        known = sorted({*self.arches, *(c.name for a in self.arches.values() for c in a.cores)})
        raise UnknownArch(f"no arch plugin provides {name!r}; installed: {', '.join(known)}")

    def vcpu_debug(self, request: VcpuDebugRequest) -> ArchVcpuDebug:
        ops = self.pm.hook.guestdbg_vcpu_debug(request=request)
        if ops is None:
            raise UnknownArch(f"no plugin binds vCPUs of arch {request.arch.name!r}")
        return ops  # type: ignore[no-any-return]

    def gdb_arch(self, arch: ArchInfo, core: CoreInfo) -> GdbArch:
        layout: GdbArch | None = self.pm.hook.guestdbg_gdb_arch(arch=arch, core=core)
        if layout is None:
            raise UnknownArch(f"no plugin gives a GDB register layout for {core.name!r}")
        return layout

    def conformance(self, arch: ArchInfo, core: CoreInfo) -> ConformanceProfile:
        """The conformance kit's profile for ``core`` (``guestdbg_conformance``)."""
        profile = self.pm.hook.guestdbg_conformance(arch=arch, core=core)
        if profile is None:
            raise UnknownArch(
                f"no plugin gives a conformance profile for core {core.name!r} of arch "
                f"{arch.name!r}: implement the guestdbg_conformance hook"
            )
        return profile  # type: ignore[no-any-return]

    def emulated_hosts(self) -> list[HostFactory]:
        return [h for hosts in self.pm.hook.guestdbg_emulated_hosts() for h in hosts]

    def emulated_host(self, name: str) -> HostFactory:
        hosts = self.emulated_hosts()
        for h in hosts:
            if name in (h.name, h.core, h.arch):
                return h
        raise UnknownArch(
            f"no emulated host for {name!r}; available: {', '.join(h.name for h in hosts)}"
        )


def load(extra_plugins: tuple[object, ...] = (), entry_points: bool = True) -> Registry:
    """A registry with every installed arch plugin (and ``extra_plugins``, for tests)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for p in extra_plugins:
        pm.register(p)
    reg = Registry(pm)
    for info in pm.hook.guestdbg_arch():
        if info.name in reg.arches:
            raise GuestDebugError(f"two plugins claim arch {info.name!r}")
        reg.arches[info.name] = info
    return reg


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = load()
    return _default
