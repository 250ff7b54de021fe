"""What one run of a program yields: the guest-visible state at each breakpoint stop.

Both sides (QEMU and the emulated host) produce a ``Trace`` with the same names, so the
comparison is a plain mapping compare: the GPRs, PC and the core SPRs by their GDB names, and
every 32-bit word of the vCPU's area (data, handler counters, handler log) as ``mem[0x...]``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .generator import Layout

REGISTERS = (
    *(f"r{n}" for n in range(32)),
    "pc",
    "msr",
    "cr",
    "lr",
    "ctr",
    "xer",
    "srr0",
    "srr1",
    "esr",
    "dear",
)
"""What is compared at every stop, besides memory."""
SPRS = ("srr0", "srr1", "esr", "dear")

State = dict[str, int | None]

END_DONE = "done"
"""The run reached the program's ``done`` loop."""


@dataclass
class Trace:
    states: list[State] = field(default_factory=list)
    end: str = ""
    """END_DONE, or what stopped the run early (a timeout, an unexpected stop, too many)."""


def mem_name(addr: int) -> str:
    return f"mem[{addr:#x}]"


class MemoryWords:
    """Turns a dump of ``size`` bytes at ``addr`` into ``mem[...]`` entries of a state (the
    names are made once per program: a run reads the same range at every stop)."""

    def __init__(self, addr: int, size: int) -> None:
        self.addr, self.size = addr, size
        self._names = [mem_name(addr + off) for off in range(0, size - 3, 4)]
        self._unpack = struct.Struct(f">{len(self._names)}I").unpack_from

    def add(self, state: State, data: bytes) -> None:
        state.update(zip(self._names, self._unpack(data), strict=True))


def memory_words(layout: Layout) -> MemoryWords:
    """What is compared at each stop besides registers: vCPU 0's whole area."""
    return MemoryWords(layout.area(0), layout.area_size)
