"""What an arch's debug facility can do, as numbers the core enforces.

The core refuses a request before touching any vCPU, so every limit the hardware (or kernel)
imposes must be stated here: how many slots, which watch kinds, which lengths. An arch computes
this per VM at setup (it may depend on what the kernel reports, e.g. BLOCKIRQ), and states a
static default for listings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def describe(self) -> dict[str, object]:
        return {
            "hw_breakpoints": "via software" if self.hw_break_via_sw else self.hw_breakpoints,
            "hw_watchpoints": "shared" if self.shared_slots else self.hw_watchpoints,
            "watch_kinds": sorted(k.value for k in self.watch_kinds),
            "watch_lengths": list(self.watch_lengths),
            "watch_aligned": self.watch_aligned,
            "single_step": self.single_step,
            "step_blocks_irqs": self.step_blocks_irqs,
            "sw_break_size": self.sw_break_size,
        }
