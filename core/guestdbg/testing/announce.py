"""Check 1: the arch is announced as a third-party plugin would be, and its facts hold together.

The core finds arches only through the ``guestdbg.arch`` entry-point group (never by import),
so a plugin that works when registered by hand but has no entry point is invisible to every VMM.
Capabilities are the numbers the core enforces before touching a vCPU, so contradictions in
them (a watch kind with no slot for it, a live vCPU offering more than the listing) become
wrong refusals or half-applied kernel state later.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ..arch import ArchInfo, OwnershipPolicy
from ..capabilities import DebugCapabilities
from ..errors import UnknownArch
from ..plugins import ENTRY_POINT_GROUP, Registry
from ..points import WATCH_KINDS


def entry_point_announcing(arch: str) -> str:
    """The ``name = value`` of the entry point whose plugin announces ``arch``."""
    seen = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        announce = getattr(ep.load(), "guestdbg_arch", None)
        info = announce() if callable(announce) else None
        seen.append(f"{ep.name} = {ep.value} ({getattr(info, 'name', None)!r})")
        if isinstance(info, ArchInfo) and info.name == arch:
            return f"{ep.name} = {ep.value}"
    raise AssertionError(
        f"no entry point in group {ENTRY_POINT_GROUP!r} announces arch {arch!r}; "
        f"found: {seen or 'none'}. Declare one under "
        f'[project.entry-points."{ENTRY_POINT_GROUP}"] in the plugin\'s pyproject.toml'
    )


def caps_problems(caps: DebugCapabilities) -> list[str]:
    """Every way ``caps`` contradicts itself (empty when consistent)."""
    out = []
    if caps.hw_breakpoints < 0 or caps.hw_watchpoints < 0:
        out.append("negative slot count")
    if not caps.watch_kinds <= WATCH_KINDS:
        out.append(
            f"watch_kinds holds non-watch kinds: {sorted(k.value for k in caps.watch_kinds)}"
        )
    watch_slots = caps.hw_breakpoints if caps.shared_slots else caps.hw_watchpoints
    if caps.watch_kinds and watch_slots == 0:
        out.append("watch kinds are offered but there is no slot for a watchpoint")
    if caps.watch_kinds and not caps.watch_lengths:
        out.append("watch kinds are offered but no watch length")
    if any(n <= 0 for n in caps.watch_lengths) or len(set(caps.watch_lengths)) != len(
        caps.watch_lengths
    ):
        out.append(f"watch_lengths must be distinct positive sizes: {caps.watch_lengths}")
    if caps.watch_aligned and any(n & (n - 1) for n in caps.watch_lengths if n > 0):
        out.append(f"aligned watch lengths must be powers of two: {caps.watch_lengths}")
    if not caps.hw_break_lengths or any(n <= 0 for n in caps.hw_break_lengths):
        out.append(
            f"hw_break_lengths must name at least one positive size: {caps.hw_break_lengths}"
        )
    if caps.sw_break_size <= 0:
        out.append("sw_break_size must be positive")
    if caps.step_via_sw and not caps.single_step:
        out.append("step_via_sw without single_step")
    if caps.step_blocks_irqs and not caps.single_step:
        out.append("step_blocks_irqs without single_step")
    return out


def live_caps_problems(static: DebugCapabilities, live: DebugCapabilities) -> list[str]:
    """How a live vCPU's caps exceed the listing's (a live vCPU may report fewer, never more)."""
    out = caps_problems(live)
    if not live.hw_break_via_sw and live.hw_breakpoints > static.hw_breakpoints:
        out.append(f"live hw_breakpoints {live.hw_breakpoints} > listed {static.hw_breakpoints}")
    if live.hw_watchpoints > static.hw_watchpoints:
        out.append(f"live hw_watchpoints {live.hw_watchpoints} > listed {static.hw_watchpoints}")
    if not live.watch_kinds <= static.watch_kinds:
        out.append("a live vCPU offers watch kinds the listing does not")
    if not set(live.watch_lengths) <= set(static.watch_lengths):
        out.append("a live vCPU offers watch lengths the listing does not")
    if live.sw_break_size != static.sw_break_size:
        out.append(f"sw_break_size {live.sw_break_size} live, {static.sw_break_size} listed")
    return out


def arch_problems(info: ArchInfo) -> list[str]:
    out = []
    names = [c.name for c in info.cores]
    if not names:
        out.append("the arch announces no core")
    if len(set(names)) != len(names):
        out.append(f"core names repeat: {names}")
    if info.default_core and info.default_core not in names:
        out.append(f"default_core {info.default_core!r} is not one of {names}")
    for core in info.cores:
        out += [f"core {core.name}: {p}" for p in caps_problems(core.caps)]
    return out


def check_unknown_core_refused(registry: Registry, info: ArchInfo) -> None:
    bogus = "no-such-core-" + "-".join(c.name for c in info.cores)
    for attempt, call in (
        (f"{info.name}.core({bogus!r})", lambda: info.core(bogus)),
        (f"Registry.resolve({bogus!r})", lambda: registry.resolve(bogus)),
    ):
        try:
            call()
        except UnknownArch:
            continue
        except Exception as e:
            raise AssertionError(f"{attempt} raised {type(e).__name__}, not UnknownArch") from e
        raise AssertionError(f"{attempt} was accepted; an unknown core must raise UnknownArch")


def check_policy_known(policy: str) -> None:
    assert policy in OwnershipPolicy.ALL, (
        f"profile policy {policy!r} is none of {OwnershipPolicy.ALL}"
    )
