"""What an arch plugin hands ``guestdbg demo`` (hook ``guestdbg_demo``): its sample guest, the
symbols each step of the demo uses, and one sentence per step on what its hardware and KVM did.

Plain data, so the core runs the demo without importing the arch package: the plugin builds
the guest (``build``), names the places in it, and explains the arch-specific part; the core
drives GDB, checks the outcome and prints the transcript.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

STEPS = ("attach", "sw_break", "step", "hw_break", "watch", "guest_trap", "detach")
"""The demo's steps, in order; ``DemoGuest.explain`` may hold a sentence for each."""

ROLES = (
    "sw_break",
    "hw_break",
    "watched",
    "watch_store",
    "guest_trap",
    "after_guest_trap",
    "guest_trap_every",
    "guest_trap_count",
    "guest_trap_syndrome",
    "kernel_trap_count",
    "progress",
)
"""Symbols the demo needs, by role:

* ``sw_break``: a function to put a software breakpoint on; ``hw_break``: a code label for a
  hardware breakpoint; ``watched``: a 4-byte counter the loop writes, at ``watch_store``.
* ``guest_trap``: where the guest executes its own breakpoint instruction, every
  ``guest_trap_every`` rounds (a 4-byte variable, 0 = never; the demo sets it); its handler
  counts it in ``guest_trap_count``, keeps the syndrome it saw in ``guest_trap_syndrome`` and
  resumes at ``after_guest_trap``.
* ``kernel_trap_count``: a trap the guest takes that never leaves KVM_RUN (a contrast).
* ``progress``: a counter that shows the guest is running.
"""


@dataclass(frozen=True)
class DemoGuest:
    source: Path
    """The guest's source, shipped with the plugin."""
    build: Callable[[Path, Path], Path]
    """``build(source, out_dir)``: the ELF (reused when nothing changed)."""
    symbols: Mapping[str, str]
    """A symbol name for every role in :data:`ROLES`."""
    guest_trap_syndrome: int
    """The syndrome the guest's handler must see for its own trap, as the hardware sets it."""
    gdb_setup: tuple[str, ...] = ()
    """GDB commands to issue before connecting (``set endian big``: a tdesc has no byte order)."""
    explain: Mapping[str, str] = field(default_factory=dict)
    """Per step (:data:`STEPS`), what the arch's hardware and KVM did, in one sentence."""
