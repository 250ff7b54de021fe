"""The one exception hierarchy a VMM catches.

Every failure guestdbg reports is a :class:`GuestDebugError`. The subclasses are the few cases a
caller treats differently: the arch cannot do it, the hardware has no slot left, the address is
not guest memory, the kernel refused. The GDB stub maps them to ``E`` replies and the CLI prints
their message as one line, so messages are written for a person, not a traceback.
"""

from __future__ import annotations

import errno as _errno


class GuestDebugError(Exception):
    """Base of everything guestdbg raises on purpose."""


class UnknownArch(GuestDebugError):
    """No installed plugin provides the requested arch or core."""


class UnsupportedByArch(GuestDebugError):
    """The arch (or this kernel) cannot do what was asked, e.g. a read-only watchpoint on x86."""


class NoFreeSlot(GuestDebugError):
    """Every hardware breakpoint or watchpoint slot of this kind is taken."""


class BadAddress(GuestDebugError):
    """The address is outside guest memory, misaligned, or not mapped."""


class InvalidRequest(GuestDebugError):
    """A request that is malformed on its face (bad length, unknown point kind, bad field)."""


class BadExpression(InvalidRequest):
    """An agent expression (a breakpoint condition's bytecode) that guestdbg will not run: an
    unknown or refused opcode, a truncated operand, a jump off an instruction, a stack that can
    underflow or grow past the limit (``docs/conditions.md``)."""


class EvalError(GuestDebugError):
    """An agent expression failed while it ran: a division by zero, a memory or register read
    that failed, the step limit. The only exception :func:`guestdbg.conditions.evaluate`
    raises."""


class NoMapping(GuestDebugError):
    """An exception number has no counterpart in the requested numberspace."""


class MigrationError(GuestDebugError):
    """A saved debug-state document cannot be restored; nothing was changed."""


class NotStopped(GuestDebugError):
    """The operation needs the vCPU (or the whole VM) out of KVM_RUN."""


class KernelError(GuestDebugError):
    """An ioctl failed; carries the ioctl's name and the errno so the cause is never lost."""

    def __init__(self, ioctl: str, errno: int, detail: str = "") -> None:
        self.ioctl = ioctl
        self.errno = errno
        name = _errno.errorcode.get(errno, str(errno))
        text = f"{ioctl} failed: {name} ({_errno_text(errno)})"
        if detail:
            text += f": {detail}"
        super().__init__(text)


def _errno_text(code: int) -> str:
    import os

    return os.strerror(code)
