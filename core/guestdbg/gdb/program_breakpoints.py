"""GDB's skip of a "program breakpoint", undone so the guest's own trap still happens.

GDB treats some instructions as the program's own breakpoint
(``gdbarch_program_breakpoint_here_p``): on PowerPC every ``tw``/``twi``/``td``/``tdi``
(rs6000-tdep.c), on x86 ``int3``. When the user has a breakpoint on such an instruction, GDB
marks it *permanent* and, to resume from it, never executes it: ``resume_1`` (infrun.c) moves
the PC past it (``gdbarch_skip_permanent_breakpoint``) and, for ``stepi``, plants a single-step
breakpoint at the new PC and continues. For a process that is right (the trap's SIGTRAP is GDB's
own); for a guest kernel it loses an exception the guest would have taken: its program-interrupt
or #BP handler never runs for that instruction.

The stub therefore recognises the skip and does not apply it. The vCPU stays on the trap, and
the session's ordinary step-over executes it with the host's breakpoint set aside, so the guest
takes its exception exactly as it would without a debugger (or, for a trap whose condition is
false, simply goes on). When GDB had planted its single-step breakpoint, the resume becomes a
real step, so ``stepi`` ends where any step over an exception ends: at the guest's handler.

The skip is told apart from a user's own PC write by GDB's packet order, measured with
gdb-multiarch 13.1: GDB re-inserts its breakpoints *before* the skip's ``P`` (``proceed`` inserts,
then ``resume_1`` skips), whereas ``set $pc`` and ``jump`` write the PC while breakpoints are
still removed (GDB removes them at every stop unless ``breakpoint always-inserted`` is on; with
it on, a user's write of the next instruction's address over a trap under a breakpoint is taken
for the skip). So a PC write is the skip when all of this holds: the arch names the instruction
at the old PC a program breakpoint, the new PC is the old one plus its size, and this connection
has a breakpoint inserted at the old PC.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..errors import GuestDebugError
from .target import DebugTarget, ResumeAction

BREAK_TYPES = (0, 1)
"""GDB ``Z`` types that are breakpoints (software, hardware): what makes a location permanent."""


class ProgramBreakpointArch(Protocol):
    """The optional part of a :class:`~guestdbg.gdb.target.GdbArch` this module uses."""

    program_breakpoint_size: int
    """Bytes GDB moves the PC past a program breakpoint (its breakpoint instruction's size)."""

    def is_program_breakpoint(self, code: bytes) -> bool:
        """True if GDB's client takes the instruction in ``code`` (``program_breakpoint_size``
        bytes at the PC) for the program's own breakpoint."""
        ...


@dataclass(slots=True)
class _Skip:
    addr: int
    step_breakpoint: bool = False
    """GDB planted a breakpoint at the skip's target after it: its ``stepi`` in disguise."""


class ProgramBreakpointSkips:
    """One connection's view of GDB's breakpoints and of skips it did not apply."""

    def __init__(self, arch: object) -> None:
        size = getattr(arch, "program_breakpoint_size", 0)
        check = getattr(arch, "is_program_breakpoint", None)
        self._arch: ProgramBreakpointArch | None = arch if size and check else None  # type: ignore[assignment]
        self._inserted: Counter[int] = Counter()
        self._pending: dict[int, _Skip] = {}

    # -- breakpoints GDB inserted through this connection ------------------------------------

    def point(self, gdb_type: int, addr: int, insert: bool) -> None:
        """A ``Z``/``z`` the target accepted."""
        if gdb_type not in BREAK_TYPES or self._arch is None:
            return
        if insert:
            if self._inserted[addr] == 0:
                size = self._arch.program_breakpoint_size
                for skip in self._pending.values():
                    if addr == skip.addr + size:
                        skip.step_breakpoint = True
            self._inserted[addr] += 1
        elif self._inserted[addr] > 1:
            self._inserted[addr] -= 1
        else:
            del self._inserted[addr]

    # -- register writes ---------------------------------------------------------------------

    def absorbs_pc_write(self, target: DebugTarget, vcpu: int, new_pc: int) -> bool:
        """True if writing ``new_pc`` is GDB skipping a program breakpoint (then the write is
        not to be applied); any other PC write cancels a skip pending on that vCPU."""
        self._pending.pop(vcpu, None)
        arch = self._arch
        if arch is None or not self._inserted:
            return False
        pc = self._pc(target, vcpu)
        if pc is None or pc not in self._inserted:
            return False
        size = arch.program_breakpoint_size
        if new_pc != pc + size:
            return False
        try:
            code = target.read_memory(vcpu, pc, size)
        except GuestDebugError:
            return False
        if len(code) != size or not arch.is_program_breakpoint(code):
            return False
        self._pending[vcpu] = _Skip(pc)
        return True

    def _pc(self, target: DebugTarget, vcpu: int) -> int | None:
        regnum = target.gdb_arch.pc_regnum
        some = getattr(target, "read_some_registers", None)
        try:
            if some is not None:
                value: int | None = some(vcpu, (regnum,)).get(regnum)
                return value
            return target.read_registers(vcpu)[regnum]
        except GuestDebugError:
            return None

    # -- resuming ----------------------------------------------------------------------------

    def resume(self, actions: Mapping[int, ResumeAction]) -> Mapping[int, ResumeAction]:
        """The actions to run: a vCPU whose skip GDB followed with its single-step breakpoint
        steps instead of continuing. Pending skips end here."""
        if not self._pending:
            return actions
        out = dict(actions)
        for vcpu, skip in self._pending.items():
            act = out.get(vcpu)
            if act is not None and not act.step and skip.step_breakpoint:
                out[vcpu] = ResumeAction(step=True)
        self._pending.clear()
        return out

    def forget_skips(self) -> None:
        """A stop or a detach: nothing pending survives it."""
        self._pending.clear()
