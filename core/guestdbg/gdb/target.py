"""What an arch supplies to the GDB stub: registers in ``g`` order and a target description.

Mirrors the split of the ``gdbstub`` crate's ``Arch`` trait: the stub knows how to frame
registers (hex, width, byte order, ``xx`` for unavailable) and the arch knows which registers
exist and where in the vCPU they come from. The XML is generated from the same register list so
the ``g`` layout and the description cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from xml.sax.saxutils import escape

from ..capabilities import DebugCapabilities
from ..events import ResumeAction, StopEvent
from ..kvm.uapi import ByteOrder
from ..points import DebugPoint
from ..vcpu import VcpuHandle

__all__ = [
    "DebugTarget",
    "GdbArch",
    "GdbRegister",
    "GdbType",
    "GdbUnion",
    "GdbVector",
    "ResumeAction",
    "StopEvent",
    "target_xml",
]


@dataclass(frozen=True, slots=True)
class GdbRegister:
    name: str
    bitsize: int
    feature: str
    """GDB feature name, e.g. ``org.gnu.gdb.power.core``."""
    type: str = "uint32"
    group: str | None = None


@dataclass(frozen=True, slots=True)
class GdbVector:
    """A ``<vector>`` type of a target description: ``count`` elements of type ``element``
    (a GDB predefined type such as ``int32`` or ``ieee_single``, or one defined before)."""

    id: str
    element: str
    count: int


@dataclass(frozen=True, slots=True)
class GdbUnion:
    """A ``<union>`` type: ``(name, type)`` fields over the same bits, as GDB's PowerPC AltiVec
    feature shows a 128-bit vector register as integer, float and lane views at once."""

    id: str
    fields: tuple[tuple[str, str], ...]


GdbType = GdbVector | GdbUnion
"""A type a feature defines for its registers (GDB's ``gdb-target.dtd``: vector, union)."""


class GdbArch(Protocol):
    architecture: str
    """The ``<architecture>`` of the target description (BFD name, e.g. ``powerpc:e500mc``)."""
    byteorder: ByteOrder
    registers: Sequence[GdbRegister]
    """In ``g`` packet order; a register's index here is its GDB regnum."""
    pc_regnum: int
    sp_regnum: int
    expedite: Sequence[int]
    """Registers sent in every stop reply (PC, SP and the status register) so GDB skips ``g``."""

    def read_registers(self, vcpu: VcpuHandle) -> list[int | None]:
        """All registers' values in ``g`` order; None where the vCPU cannot say."""
        ...

    def write_registers(self, vcpu: VcpuHandle, values: Mapping[int, int]) -> None:
        """Write the given regnums; a regnum the vCPU cannot take raises GuestDebugError."""
        ...

    # Optional: ``read_some_registers(vcpu, regnums) -> Mapping[int, int | None]``, just the
    # registers named, through the fewest ioctls that hold them (PC, SP, MSR and LR all come
    # from one KVM_GET_REGS on BookE); what a target's ``read_some_registers`` would call.

    # Optional: ``types: Mapping[str, Sequence[GdbType]]``, per feature name the types that
    # feature defines before its registers (a register's ``type`` may then name one): what a
    # description needs for registers of no predefined type, e.g. AltiVec's ``vec128``.

    # Optional: ``program_breakpoint_size: int`` and ``is_program_breakpoint(code) -> bool``:
    # the guest instructions GDB's client takes for the program's own breakpoint and skips
    # instead of executing (PowerPC traps, x86 ``int3``); with them the stub keeps the guest's
    # exception (see :mod:`guestdbg.gdb.program_breakpoints`).


def target_xml(arch: GdbArch, osabi: str | None = None) -> str:
    """A single-document target description (features inline, no xi:include)."""
    out = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', "<target>"]
    out.append(f"  <architecture>{escape(arch.architecture)}</architecture>")
    if osabi:
        out.append(f"  <osabi>{escape(osabi)}</osabi>")
    types: Mapping[str, Sequence[GdbType]] = getattr(arch, "types", {})
    feature = None
    for regnum, reg in enumerate(arch.registers):
        if reg.feature != feature:
            if feature is not None:
                out.append("  </feature>")
            feature = reg.feature
            out.append(f'  <feature name="{escape(feature)}">')
            out.extend(_type_xml(t) for t in types.get(feature, ()))
        attrs = f'name="{escape(reg.name)}" bitsize="{reg.bitsize}" regnum="{regnum}"'
        attrs += f' type="{escape(reg.type)}"'
        if reg.group:
            attrs += f' group="{escape(reg.group)}"'
        out.append(f"    <reg {attrs}/>")
    if feature is not None:
        out.append("  </feature>")
    out.append("</target>")
    return "\n".join(out) + "\n"


def _type_xml(t: GdbType) -> str:
    if isinstance(t, GdbVector):
        return f'    <vector id="{escape(t.id)}" type="{escape(t.element)}" count="{t.count}"/>'
    fields = "".join(
        f'\n      <field name="{escape(name)}" type="{escape(kind)}"/>' for name, kind in t.fields
    )
    return f'    <union id="{escape(t.id)}">{fields}\n    </union>'


def encode_register(value: int | None, bitsize: int, byteorder: ByteOrder) -> str:
    """One register as ``g`` hex, in target byte order; ``xx..`` when unavailable."""
    nbytes = bitsize // 8
    if value is None:
        return "xx" * nbytes
    return (value & ((1 << bitsize) - 1)).to_bytes(nbytes, byteorder).hex()


class DebugTarget(Protocol):
    """What the GDB stub needs from a debug session (implemented by ``guestdbg.session``).

    All-stop: between a reported stop and the next resume every vCPU is out of KVM_RUN, so
    register and memory access is always consistent. Errors are GuestDebugError subclasses; the
    stub turns them into ``E`` replies.
    """

    @property
    def gdb_arch(self) -> GdbArch:
        """Read-only for the stub: a plain attribute or a property both satisfy it."""
        ...

    @property
    def caps(self) -> DebugCapabilities: ...

    def attach(self) -> StopEvent:
        """A debugger connected: stop every vCPU if the guest runs, drop stops queued before,
        and return the stop that ``?`` reports (INTERRUPT if the guest had to be stopped).

        Called once per connection, before any method that reads or changes the guest.
        """
        ...

    def vcpu_count(self) -> int: ...

    def vcpu_name(self, vcpu: int) -> str: ...

    def read_registers(self, vcpu: int) -> list[int | None]: ...

    # Optional: ``read_some_registers(vcpu, regnums) -> Mapping[int, int | None]``, only the
    # registers named. The stub uses it for the registers every stop reply carries (PC, SP,
    # status), which then cost what reading those few costs; without it each stop reads the
    # whole register file (on BookE three ioctl families, where the expedited ones need one).

    def write_registers(self, vcpu: int, values: Mapping[int, int]) -> None: ...

    def read_memory(self, vcpu: int, addr: int, length: int) -> bytes:
        """Guest memory as the debugger should see it: original words, never breakpoint words."""
        ...

    def write_memory(self, vcpu: int, addr: int, data: bytes) -> None: ...

    def insert_point(self, point: DebugPoint) -> None:
        """Add one reference to ``point``. A target that judges breakpoint conditions itself
        also takes ``insert_point(point, condition)`` and offers
        ``set_condition(point, condition)`` (replace the condition, no new reference): the
        stub then offers ``ConditionalBreakpoints+`` (see :mod:`guestdbg.gdb.conditions`)."""
        ...

    def remove_point(self, point: DebugPoint) -> object:
        """Drop one reference to ``point``; whatever it returns is ignored by the stub."""
        ...

    def resume(self, actions: Mapping[int, ResumeAction]) -> None:
        """Start the vCPUs (every vCPU not named keeps stopped only if another steps)."""
        ...

    def wait_stop(self, timeout: float | None) -> StopEvent | None:
        """Block until a stop is ready (None on timeout). Queued stops come one per call."""
        ...

    def interrupt(self) -> None:
        """Stop every vCPU; ``wait_stop`` then returns an INTERRUPT stop."""
        ...

    def detach(self) -> None:
        """Remove every point, clear hardware debug state on every vCPU, let the guest run.

        The stub calls it exactly once per connection (``D``, ``k``, or the connection lost),
        always with the guest stopped: if it was running, the stub first calls ``interrupt`` and
        waits for one stop. Stops still queued are the old debugger's and are dropped.
        """
        ...

    def monitor(self, command: str) -> str:
        """Run one whitelisted monitor command; unknown commands raise InvalidRequest.

        ``command`` is printable ASCII, stripped, at most 256 characters; the returned text is
        shown to the GDB user as is.
        """
        ...
