"""A small in-process DebugTarget for the stub's tests. A TEST TARGET, not production.

Flat memory of ``nop`` words, one register file per vCPU (32-bit PowerPC core registers, big
endian, so the real gdb-multiarch accepts its description), a real
:class:`~guestdbg.points.PointTable` with real capabilities, and a trivial execution model:
every instruction is 4 bytes and does nothing, except the "accesses" a test declares (a data
address read or written by the instruction at some PC). ``continue`` moves every continuing
vCPU forward in lock-step to the nearest breakpoint or watched access; with none ahead the
guest "runs" until ``interrupt``. ``step`` moves each stepping vCPU one instruction.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from guestdbg.capabilities import DebugCapabilities
from guestdbg.errors import BadAddress, InvalidRequest, NotStopped, UnsupportedByArch
from guestdbg.events import ResumeAction, StopEvent, StopKind, StopReason, stop_for_watch
from guestdbg.gdb.target import GdbRegister
from guestdbg.kvm.uapi import ByteOrder
from guestdbg.points import DEFAULT_SPACE, DebugPoint, PointKind, PointTable
from guestdbg.vcpu import VcpuHandle

CORE = "org.gnu.gdb.power.core"
NOP = bytes.fromhex("60000000")
INSN = 4

TEST_CAPS = DebugCapabilities(
    hw_breakpoints=2,
    hw_watchpoints=2,
    watch_lengths=(1, 2, 4, 8),
    watch_aligned=True,
    hw_break_lengths=(4,),
    single_step=True,
    sw_break_size=4,
)


def _core_registers() -> tuple[GdbRegister, ...]:
    regs = [GdbRegister(f"r{i}", 32, CORE) for i in range(32)]
    regs.append(GdbRegister("pc", 32, CORE, "code_ptr"))
    regs += [GdbRegister(n, 32, CORE) for n in ("msr", "cr")]
    regs.append(GdbRegister("lr", 32, CORE, "code_ptr"))
    regs += [GdbRegister(n, 32, CORE) for n in ("ctr", "xer")]
    return tuple(regs)


REGISTERS = _core_registers()
_WATCHES = {PointKind.WATCH_WRITE: "w", PointKind.WATCH_READ: "r", PointKind.WATCH_ACCESS: "rw"}
PC = 32
SP = 1
MSR = 33


@dataclass
class PpcTestArch:
    """The GdbArch of the test target: PowerPC core registers only (no FPU, no SPRs)."""

    architecture: str = "powerpc:e500mc"
    byteorder: ByteOrder = "big"
    registers: Sequence[GdbRegister] = REGISTERS
    pc_regnum: int = PC
    sp_regnum: int = SP
    expedite: Sequence[int] = (PC, SP, MSR)

    def read_registers(self, vcpu: VcpuHandle) -> list[int | None]:
        raise UnsupportedByArch("the test arch has no real vCPU")

    def write_registers(self, vcpu: VcpuHandle, values: Mapping[int, int]) -> None:
        raise UnsupportedByArch("the test arch has no real vCPU")


@dataclass
class Counters:
    attach: int = 0
    detach: int = 0
    detach_refused: int = 0
    """detach() calls that came while the guest ran (the stub must stop it first)."""
    interrupt: int = 0
    resume: list[dict[int, ResumeAction]] = field(default_factory=list)
    register_writes: list[dict[int, int]] = field(default_factory=list)


class MemTarget:
    """Implements :class:`guestdbg.gdb.target.DebugTarget` over a bytearray."""

    def __init__(
        self,
        *,
        vcpus: int = 1,
        base: int = 0x1000,
        size: int = 0x4000,
        caps: DebugCapabilities = TEST_CAPS,
    ) -> None:
        self.gdb_arch = PpcTestArch()
        self.caps = caps
        self.base = base
        self.memory = bytearray(NOP * (size // INSN))
        self.regs = [[0] * len(REGISTERS) for _ in range(vcpus)]
        for v, regs in enumerate(self.regs):
            regs[PC] = base + 0x100 * v
            regs[SP] = base + size - 0x10
            regs[MSR] = 0x00029000
            for i in range(2, 32):
                regs[i] = 0x01010101 * i
        self.points = PointTable(caps)
        self.accesses: dict[int, tuple[int, str]] = {}
        """PC -> (data address, "r" or "w"): the instruction at PC reads or writes there."""
        self.count = Counters()
        self.running = False
        self._running_vcpus: list[int] = []
        self._stops: deque[StopEvent] = deque()
        self._cond = threading.Condition()

    # -- identity ------------------------------------------------------------------------------

    def vcpu_count(self) -> int:
        return len(self.regs)

    def vcpu_name(self, vcpu: int) -> str:
        return f"vcpu{vcpu} (memtarget)"

    def _vcpu(self, vcpu: int) -> list[int]:
        if not 0 <= vcpu < len(self.regs):
            raise InvalidRequest(f"no vCPU {vcpu}")
        if self.running:
            raise NotStopped("the guest is running")
        return self.regs[vcpu]

    # -- registers and memory ------------------------------------------------------------------

    def read_registers(self, vcpu: int) -> list[int | None]:
        return list(self._vcpu(vcpu))

    def write_registers(self, vcpu: int, values: Mapping[int, int]) -> None:
        regs = self._vcpu(vcpu)
        for n, v in values.items():
            if not 0 <= n < len(REGISTERS) or not 0 <= v < 1 << REGISTERS[n].bitsize:
                raise InvalidRequest(f"register {n} cannot hold {v:#x}")
        self.count.register_writes.append(dict(values))
        for n, v in values.items():
            regs[n] = v

    def _offset(self, addr: int) -> int:
        off = addr - self.base
        if not 0 <= off < len(self.memory):
            raise BadAddress(f"{addr:#x} is not guest memory")
        return off

    def read_memory(self, vcpu: int, addr: int, length: int) -> bytes:
        self._vcpu(vcpu)
        off = self._offset(addr)
        return bytes(self.memory[off : off + length])

    def write_memory(self, vcpu: int, addr: int, data: bytes) -> None:
        self._vcpu(vcpu)
        off = self._offset(addr)
        if off + len(data) > len(self.memory):
            raise BadAddress(f"{addr:#x}+{len(data)} runs past guest memory")
        self.memory[off : off + len(data)] = data

    # -- points --------------------------------------------------------------------------------

    def insert_point(self, point: DebugPoint) -> None:
        if point.kind is PointKind.SW_BREAK:
            self._offset(point.addr)
            if point.length != self.caps.sw_break_size:
                raise InvalidRequest(f"{point}: a trap is {self.caps.sw_break_size} bytes")
        elif point.kind is PointKind.HW_BREAK and point.length not in self.caps.hw_break_lengths:
            raise InvalidRequest(f"{point}: length must be one of {self.caps.hw_break_lengths}")
        self.points.insert(point)

    def remove_point(self, point: DebugPoint) -> None:
        self.points.remove(point)

    def point_refs(self) -> dict[DebugPoint, int]:
        """Every point with its reference count (what the fuzz test compares to its model)."""
        out = {e.point: e.refs for e in self.points.sw.values()}
        out.update({e.point: e.refs for e in self.points.hw_breaks.values()})
        out.update({e.point: e.refs for e in self.points.watches.values()})
        return out

    # -- execution -----------------------------------------------------------------------------

    def _event_at(self, pc: int) -> StopReason | None:
        key = (DEFAULT_SPACE, pc)
        if key in self.points.sw:
            return StopReason(StopKind.SW_BREAK, pc)
        if key in self.points.hw_breaks:
            return StopReason(StopKind.HW_BREAK, pc)
        access = self.accesses.get(pc)
        if access is None:
            return None
        data, rw = access
        for entry in self.points.watches.values():
            w = entry.point
            if rw in _WATCHES[w.kind] and w.addr <= data < w.addr + w.length:
                return StopReason(stop_for_watch(w.kind), pc, data)
        return None

    def _next_event(self, vcpu: int) -> tuple[int, StopReason] | None:
        pc = self.regs[vcpu][PC]
        end = self.base + len(self.memory)
        candidates = [a for (_, a) in self.points.sw] + [a for (_, a) in self.points.hw_breaks]
        candidates += list(self.accesses)
        best: tuple[int, StopReason] | None = None
        for addr in sorted(a for a in candidates if pc <= a < end and (a - pc) % INSN == 0):
            reason = self._event_at(addr)
            if reason is not None:
                best = ((addr - pc) // INSN, reason)
                break
        return best

    def resume(self, actions: Mapping[int, ResumeAction]) -> None:
        with self._cond:
            if self.running:
                raise NotStopped("the guest is already running")
            for v in actions:
                self._vcpu(v)
            self.count.resume.append(dict(actions))
            stepping = sorted(v for v, a in actions.items() if a.step)
            if stepping:
                for v in stepping:
                    self.regs[v][PC] += INSN
                first = stepping[0]
                self._stops.append(
                    StopEvent(first, StopReason(StopKind.STEP, self.regs[first][PC]))
                )
                self._cond.notify_all()
                return
            going = sorted(actions)
            hits = [(hit, v) for v in going if (hit := self._next_event(v)) is not None]
            if not hits:
                self.running = True
                self._running_vcpus = going
                return
            (distance, reason), winner = min(hits, key=lambda h: (h[0][0], h[1]))
            for v in going:
                self.regs[v][PC] += distance * INSN
            self._stops.append(StopEvent(winner, reason))
            self._cond.notify_all()

    def wait_stop(self, timeout: float | None) -> StopEvent | None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._stops), timeout):
                return None
            return self._stops.popleft()

    def interrupt(self) -> None:
        with self._cond:
            self.count.interrupt += 1
            if not self.running:
                return
            self.running = False
            v = self._running_vcpus[0] if self._running_vcpus else 0
            self._stops.append(StopEvent(v, StopReason(StopKind.INTERRUPT, self.regs[v][PC])))
            self._cond.notify_all()

    def attach(self) -> StopEvent:
        with self._cond:
            self.count.attach += 1
            self.running = False
            self._stops.clear()
            return StopEvent(0, StopReason(StopKind.INTERRUPT, self.regs[0][PC]))

    def detach(self) -> None:
        with self._cond:
            self.count.detach += 1
            if self.running:
                self.count.detach_refused += 1
                raise NotStopped("detach while the guest runs (the stub must stop it first)")
            self.points.clear()
            self._stops.clear()
            self.running = True
            self._running_vcpus = list(range(len(self.regs)))

    # -- monitor -------------------------------------------------------------------------------

    def monitor(self, command: str) -> str:
        if command == "help":
            return "commands: help, points, info points, stats, policy"
        if command in ("points", "info points"):
            return "\n".join(str(p) for p in self.points.all_points()) or "no points"
        if command == "stats":
            return "reinjected: 0"
        if command == "policy":
            return "host-priority"
        raise InvalidRequest(f"unknown monitor command {command!r}; try 'monitor help'")
