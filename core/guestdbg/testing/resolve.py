"""Finding what the kit tests: the registry, the arch, its cores and their profiles.

Plain functions (no pytest), cached: collection asks for an arch's cores once per test class,
and every test of a core shares one profile (a profile is immutable; its ``make_vm`` makes a
fresh VM each time).
"""

from __future__ import annotations

import functools

from .. import plugins
from ..arch import ArchInfo, CoreInfo
from ..plugins import Registry
from .profile import ConformanceProfile


@functools.cache
def registry_for(extra_plugins: tuple[object, ...] = ()) -> Registry:
    """Every installed arch plugin, plus ``extra_plugins`` (registered last, so they win)."""
    return plugins.load(extra_plugins=extra_plugins)


def arch_info(registry: Registry, arch: str) -> ArchInfo:
    info = registry.arches.get(arch)
    if info is None:
        installed = ", ".join(sorted(registry.arches)) or "none"
        raise LookupError(
            f"no plugin announces arch {arch!r} through the {plugins.ENTRY_POINT_GROUP!r} "
            f"entry-point group; installed: {installed}"
        )
    return info


def core_names(registry: Registry, arch: str) -> list[str]:
    info = registry.arches.get(arch)
    return [c.name for c in info.cores] if info is not None else []


_profiles: dict[tuple[int, str, str], ConformanceProfile] = {}


def profile_for(registry: Registry, info: ArchInfo, core: CoreInfo) -> ConformanceProfile:
    key = (id(registry), info.name, core.name)
    if key not in _profiles:
        _profiles[key] = registry.conformance(info, core)
    return _profiles[key]
