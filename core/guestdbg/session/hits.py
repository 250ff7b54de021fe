"""Breakpoint conditions, judged where the hit happens: on the vCPU's own thread.

A debugger that evaluates ``break f if cond`` itself pays a whole stop for every hit: every vCPU
stopped, the stop reported, registers fetched, the condition computed, every vCPU resumed. A
condition handed to guestdbg with the point is judged in the vCPU's port instead, right after
the filter called the exit the host's: when it is false the vCPU steps over the point and runs
on, the server thread is not woken and no other vCPU stops (a trap word briefly held out of
memory for that step holds the other running vCPUs outside KVM_RUN for that one step; see
:meth:`~.control.RunControl.hold`).

A condition is any callable taking a :class:`HitView` and returning a truth value: the GDB stub
wraps agent expressions (``Z0,addr,kind;X...``) as one, an embedder passes Python. Several
points at one address (a ``break`` and an ``hbreak``) stop the vCPU when any of them has no
condition or a true one, as GDB's remote protocol specifies for several conditions on one
location. A condition that fails (raises) stops the vCPU and the point is reported: the user
sees the breakpoint and, in ``monitor points``, why its condition could not say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..points import DEFAULT_SPACE, Condition, DebugPoint, PointTable
from ..vcpu import VcpuHandle

if TYPE_CHECKING:
    from ..gdb.target import GdbArch

__all__ = ["Condition", "HitView", "PointStats", "judge"]

MemoryReader = Callable[[VcpuHandle, int, int], bytes]
"""``read(vcpu, addr, length)``: guest bytes at a virtual address through that vCPU's MMU."""


@dataclass
class PointStats:
    """Per point, since it was inserted: what ``monitor points`` and ``Session.point_stats``
    show, so a user can tell a condition that is never true from a point never reached."""

    hits: int = 0
    """Times a vCPU reached the point (conditions judged or not)."""
    evaluations: int = 0
    """Times its condition was judged."""
    stops: int = 0
    """Hits that stopped the vCPU and were reported."""
    errors: int = 0
    """Judgements that failed; each stopped the vCPU."""
    in_place: int = 0
    """False-condition hits passed with the instruction carried out by the arch, no step
    (:class:`guestdbg.arch.ExecuteInPlace`)."""
    last_error: str = ""
    rewritten: int = 0
    """Times the word under its trap was found replaced (by the guest rewriting its code, or
    the VMM writing guest memory) and the trap re-armed over the new word (:mod:`.rewrites`)."""


class HitView:
    """A :class:`~guestdbg.points.HitContext`: what a condition sees of the vCPU that hit the
    point, read-only, while that vCPU is out of KVM_RUN on its own thread (so reads need no
    stop of the VM). Registers come from the arch's GDB register layout, memory from the
    debugger's view: trap words show the guest's own instructions, an address outside guest
    RAM raises ``BadAddress``."""

    __slots__ = ("_arch", "_handle", "_mem", "pc", "points", "vcpu")

    def __init__(
        self,
        vcpu: int,
        pc: int,
        points: Sequence[DebugPoint],
        handle: VcpuHandle,
        arch: Callable[[], GdbArch],
        memory: MemoryReader,
    ) -> None:
        self.vcpu = vcpu
        self.pc = pc
        self.points = points
        """The points at this address whose conditions are being judged."""
        self._handle = handle
        self._arch = arch
        self._mem = memory

    def register(self, name: str) -> int:
        """A register by its GDB name (``r3``, ``rax``...); KeyError if the arch has none."""
        regs = _registers(self._arch())
        regnum = regs.numbers.get(name)
        if regnum is None:
            raise KeyError(f"no register {name!r}")
        return self._read(regs, regnum)

    def gdb_register(self, regnum: int) -> int:
        """A register by GDB register number (what an agent expression's ``reg`` names)."""
        regs = _registers(self._arch())
        if not 0 <= regnum < regs.count:
            raise KeyError(f"no register number {regnum}")
        return self._read(regs, regnum)

    def _read(self, regs: _Registers, regnum: int) -> int:
        if regs.read_some is not None:
            value = regs.read_some(self._handle, (regnum,)).get(regnum)
        else:
            value = regs.arch.read_registers(self._handle)[regnum]
        if value is None:
            raise KeyError(f"register {regs.arch.registers[regnum].name} is unavailable")
        return int(value)

    def read_memory(self, addr: int, length: int) -> bytes:
        return self._mem(self._handle, addr, length)


class _Registers:
    """What a condition's register reads need of one GDB arch, looked up once per arch."""

    __slots__ = ("arch", "count", "numbers", "read_some")

    def __init__(self, arch: GdbArch) -> None:
        self.arch = arch
        self.count = len(arch.registers)
        self.numbers = {reg.name: n for n, reg in reversed(list(enumerate(arch.registers)))}
        """Name -> number; the first register of a name wins, as a search in order finds it."""
        self.read_some: Callable[[VcpuHandle, Sequence[int]], Mapping[int, int | None]] | None = (
            getattr(arch, "read_some_registers", None)
        )


_resolved: dict[int, _Registers] = {}
"""``id(arch)`` -> its :class:`_Registers` (which holds the arch, so the id stays its own)."""
_RESOLVED_KEPT = 64


def _registers(arch: GdbArch) -> _Registers:
    regs = _resolved.get(id(arch))
    if regs is None or regs.arch is not arch:
        if len(_resolved) >= _RESOLVED_KEPT:
            _resolved.clear()
        regs = _resolved[id(arch)] = _Registers(arch)
    return regs


def points_at(table: PointTable, pc: int) -> list[DebugPoint]:
    """The breakpoints a hit at ``pc`` is a hit of (a trap word, an instruction compare)."""
    out = []
    sw = table.sw.get((DEFAULT_SPACE, pc))
    if sw is not None:
        out.append(sw.point)
    hw = table.hw_breaks.get((DEFAULT_SPACE, pc))
    if hw is not None:
        out.append(hw.point)
    return out


def judge(
    points: Sequence[DebugPoint],
    conditions: Mapping[DebugPoint, Condition],
    stats: Mapping[DebugPoint, PointStats],
    view: Callable[[Sequence[DebugPoint]], HitView],
) -> bool:
    """Whether a hit at these points stops the vCPU (counting it in each point's stats).

    Stops when no point is known (a hit the table no longer explains is the debugger's to
    see), when any point has no condition, when any condition is true and when any fails."""
    judged = []
    stop = not points
    for p in points:
        st = stats.get(p)
        if st is not None:
            st.hits += 1
        cond = conditions.get(p)
        if cond is None:
            stop = True
        judged.append((cond, st))
    if not stop:
        v = view(points)
        for cond, st in judged:
            assert cond is not None
            if st is not None:
                st.evaluations += 1
            try:
                if cond(v):
                    stop = True
            except Exception as e:  # a condition that cannot tell stops, and says why
                stop = True
                if st is not None:
                    st.errors += 1
                    st.last_error = f"{type(e).__name__}: {e}"
    if stop:
        for _, st in judged:
            if st is not None:
                st.stops += 1
    return stop
