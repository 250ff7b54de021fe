"""What a single-step stop shows of a guest, read the same way from either machine.

A stop is the exit KVM_RUN returned (and, for KVM_EXIT_DEBUG, its ``exception``, ``pc``,
``dr6`` and ``dr7``), the general registers with RIP and RFLAGS (KVM_GET_REGS), and the
program's data area and stack as 8-byte words. :func:`snapshot` reads it as raw bytes, which is
all a stop where both machines agree needs (one comparison of two byte strings); only a stop
that differs is spelled out by name (:func:`named`) for :func:`guestdbg.fidelity.compare`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from guestdbg.kvm import constants as C

from .. import abi
from .generator import ProgramLayout
from .hosts import Machine

_REGS = "struct kvm_regs"
_RUN = "struct kvm_run"
REGISTERS: tuple[str, ...] = tuple(
    name
    for _, name in sorted(
        (abi.layout().offsetof(_REGS, n), n)
        for n in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10",
                  "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
    )
)  # fmt: skip
"""``struct kvm_regs`` in its own order: eighteen u64 from offset 0."""
_REGS_FMT = struct.Struct(f"<{len(REGISTERS)}Q")
EXIT_FIELDS = ("exception", "pc", "dr6", "dr7")


@dataclass(frozen=True, slots=True)
class Snapshot:
    exit_reason: int
    debug: tuple[int, ...]
    """(exception, pc, dr6, dr7) of a KVM_EXIT_DEBUG, () for any other exit."""
    regs: bytes
    memory: bytes
    """The data area, then the stack."""

    def same_as(self, other: Snapshot) -> bool:
        return (
            self.exit_reason == other.exit_reason
            and self.debug == other.debug
            and self.regs == other.regs
            and self.memory == other.memory
        )

    def same_but_dr7(self, other: Snapshot) -> bool:
        """Everything equal but ``debug.dr7``: most stops against the kvm_pvm reference."""
        return (
            self.exit_reason == other.exit_reason
            and self.debug[:-1] == other.debug[:-1]
            and len(self.debug) == len(other.debug)
            and self.regs == other.regs
            and self.memory == other.memory
        )

    @property
    def rip(self) -> int:
        return int(_REGS_FMT.unpack(self.regs)[REGISTERS.index("rip")])


class Reader:
    """Reads :class:`Snapshot` s of one machine for one program's layout."""

    def __init__(self, machine: Machine, layout: ProgramLayout) -> None:
        lay = abi.layout()
        self._vm = machine.vm
        self._vcpu = machine.vcpu
        self._ranges = (layout.data, layout.stack)
        self._reason = lay.field(_RUN, "exit_reason")
        self._debug = [lay.field(_RUN, "debug", "arch", f) for f in EXIT_FIELDS]

    def snapshot(self, exit_reason: int) -> Snapshot:
        run = self._vcpu.kvm_run
        debug = tuple(f.get(run) for f in self._debug) if exit_reason == C.KVM_EXIT_DEBUG else ()
        regs = bytes(self._vcpu.get_regs()[: _REGS_FMT.size])
        memory = b"".join(self._vm.read_phys(lo, hi - lo) for lo, hi in self._ranges)
        return Snapshot(exit_reason, debug, regs, memory)

    def named(self, snap: Snapshot) -> dict[str, int | None]:
        """Every observable by name: registers, ``exit``, ``debug.*``, ``mem[0x...]`` words."""
        out: dict[str, int | None] = dict(zip(REGISTERS, _REGS_FMT.unpack(snap.regs), strict=True))
        out["exit"] = snap.exit_reason
        for name, value in zip(EXIT_FIELDS, snap.debug, strict=False):
            out[f"debug.{name}"] = value
        offset = 0
        for lo, hi in self._ranges:
            for addr in range(lo, hi, 8):
                out[f"mem[{addr:#x}]"] = int.from_bytes(snap.memory[offset : offset + 8], "little")
                offset += 8
        return out
