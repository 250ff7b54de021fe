"""What an arch's debug facility can do, as numbers the core enforces.

The core refuses a request before touching any vCPU, so every limit the hardware (or kernel)
imposes must be stated here: how many slots, which watch kinds, which lengths. An arch computes
this per VM at setup (it may depend on what the kernel reports, e.g. BLOCKIRQ), and states a
static default for listings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InvalidRequest
from .points import PointKind


@dataclass(frozen=True, slots=True)
class DebugCapabilities:
    hw_breakpoints: int
    """Instruction-address-compare slots (BookE IAC, x86 DR0-3 when shared)."""
    hw_watchpoints: int
    """Data-address-compare slots (BookE DAC); ignored when ``shared_slots``."""
    shared_slots: bool = False
    """Breakpoints and watchpoints draw from one pool of ``hw_breakpoints`` (x86 DR0-3)."""
    watch_kinds: frozenset[PointKind] = field(
        default_factory=lambda: frozenset(
            {PointKind.WATCH_WRITE, PointKind.WATCH_READ, PointKind.WATCH_ACCESS}
        )
    )
    watch_lengths: tuple[int, ...] = (1, 2, 4, 8)
    """Lengths a watchpoint may cover exactly."""
    watch_aligned: bool = True
    """The address must be a multiple of the length."""
    watch_before_access: bool = False
    """Watchpoints fire before the access, with the instruction suppressed (BookE DAC); going
    on from one means stepping the access with that watchpoint left out. x86 data breakpoints
    are traps (after the access) and need nothing."""
    hw_break_lengths: tuple[int, ...] = (1,)
    hw_break_via_sw: bool = False
    """Hardware-breakpoint requests are served with software breakpoints (reported as hardware
    breakpoints), e.g. when a policy leaves the instruction-address compares to the guest."""
    single_step: bool = True
    step_via_sw: bool = False
    """Single steps are done by planting trap words at the next instruction's possible
    addresses (the arch's ``step_targets``), e.g. when a policy leaves hardware stepping to the
    guest. A step that enters an interrupt handler completes when the handler returns."""
    step_blocks_irqs: bool = False
    """Interrupts can be held off while stepping (x86 KVM_GUESTDBG_BLOCKIRQ)."""
    sw_break_size: int = 1
    """Bytes a software-breakpoint instruction occupies."""
    refused: tuple[tuple[PointKind, str], ...] = ()
    """Point kinds this host cannot deliver although the arch has them, each with the reason
    the debugger is told when it asks for one (a kernel that reports ``int3`` as an emulation
    failure, data breakpoints that never fire, a VMM's own narrowing). Facts of the running
    host, known at session setup from the kernel and from probing it, so a point that would
    leave the guest stuck is refused at insertion instead."""

    def refusal(self, kind: PointKind) -> str | None:
        """Why ``kind`` is refused on this host, or None when it is not."""
        for k, why in self.refused:
            if k is kind:
                return why
        return None

    def refusing(self, reasons: Mapping[PointKind, str]) -> DebugCapabilities:
        """These capabilities with ``reasons``' kinds refused too (a refusal already there
        keeps its reason)."""
        have = {k for k, _ in self.refused}
        more = tuple((k, why) for k, why in reasons.items() if k not in have)
        return dataclasses.replace(self, refused=self.refused + more) if more else self

    def narrowed(self, limits: CapabilityLimits) -> DebugCapabilities:
        """What is left under a VMM's ``limits``: never more than these capabilities."""
        caps = self.refusing(limits.refuse)
        for name in ("hw_breakpoints", "hw_watchpoints"):
            n = getattr(limits, name)
            if n is not None:
                if n < 0:
                    raise InvalidRequest(f"{name} limit must not be negative, not {n}")
                caps = dataclasses.replace(caps, **{name: min(n, getattr(caps, name))})
        return caps

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "hw_breakpoints": "via software" if self.hw_break_via_sw else self.hw_breakpoints,
            "hw_watchpoints": "shared" if self.shared_slots else self.hw_watchpoints,
            "watch_kinds": sorted(k.value for k in self.watch_kinds),
            "watch_lengths": list(self.watch_lengths),
            "watch_aligned": self.watch_aligned,
            "single_step": self.single_step,
            "step_blocks_irqs": self.step_blocks_irqs,
            "sw_break_size": self.sw_break_size,
        }
        for kind, why in self.refused:
            out[f"refused {kind.value}"] = why
        return out


@dataclass(frozen=True)
class CapabilityLimits:
    """What a VMM narrows a session's capabilities to (``Session(..., limits=...)``), on top of
    what the host delivers: it can take away, never add.

    ``refuse`` names point kinds to refuse, each with the reason the debugger is shown (e.g.
    ``{PointKind.SW_BREAK: "guest code is in ROM here: use hbreak"}``); ``hw_breakpoints`` and
    ``hw_watchpoints`` cap the slot counts (e.g. 3 when the VMM keeps DR3 for itself)."""

    refuse: Mapping[PointKind, str] = field(default_factory=dict)
    hw_breakpoints: int | None = None
    hw_watchpoints: int | None = None
