"""Which ``Enn`` reply each failure gets: one errno-like code per kind of failure.

GDB 13 shows ``Enn`` codes to the user without interpreting them (manual, "Standard Replies";
the textual ``E.msg`` form needs the client's ``error-message`` feature, newer than GDB 13), so
the code is what tells a user or a script which limit was hit: the Linux errno whose meaning is
closest. Looked up along the exception's MRO, most specific class first.

Breakpoint and watchpoint requests are answered ``E.nn.text`` instead (:func:`error_text_reply`):
the reason a point is refused is what the user needs ("this kernel reports int3 at CPL0 as an
emulation failure: use hbreak"). GDB takes any ``E.`` reply as an error (remote.c
``packet_check_result``) and, for ``Z1``, prints what follows the second dot ("Cannot insert
hardware breakpoint 1:Remote failure reply: ..."; gdb-multiarch 13, measured). For ``Z0`` and
``Z2``-``Z4`` GDB 13 prints its own words ("Cannot insert breakpoint 1. Cannot access memory at
address ...", "Could not insert hardware watchpoint 2."); the reason is then in the packet
(``set debug remote 1``), in the stub's log and in ``monitor caps``.
"""

from __future__ import annotations

import errno

from ..errors import (
    BadAddress,
    GuestDebugError,
    InvalidRequest,
    KernelError,
    NoFreeSlot,
    NotStopped,
    UnsupportedByArch,
)


class UnknownThread(InvalidRequest):
    """A thread id that names no vCPU."""


class PacketTooLong(InvalidRequest):
    """A packet longer than the ``PacketSize`` the stub advertised."""


class BadChecksum(InvalidRequest):
    """A packet whose checksum is wrong, in no-ack mode (where it cannot be NAKed)."""


ERRNO_OF: dict[type[GuestDebugError], int] = {
    UnknownThread: errno.ESRCH,
    PacketTooLong: errno.EMSGSIZE,
    BadChecksum: errno.EBADMSG,
    InvalidRequest: errno.EINVAL,
    BadAddress: errno.EFAULT,
    NoFreeSlot: errno.ENOSPC,
    UnsupportedByArch: errno.EOPNOTSUPP,
    NotStopped: errno.EBUSY,
    KernelError: errno.EIO,
    GuestDebugError: errno.EPERM,
}

INTERNAL_ERROR = errno.EPERM
"""A bug in the stub or the target (not a GuestDebugError): logged, answered generically."""


def errno_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        code = ERRNO_OF.get(cls)
        if code is not None:
            return code
    return INTERNAL_ERROR


def error_reply(code: int) -> bytes:
    return b"E%02x" % (code & 0xFF)


_UNSAFE_IN_TEXT = frozenset(b"$#}*")
"""Bytes a reply body must not carry unescaped (framing, escape, run-length marker)."""


def error_text_reply(exc: BaseException, limit: int = 400) -> bytes:
    """``E.nn.text``: the errno code, then the exception's message in printable ASCII."""
    text = str(exc).encode("ascii", "replace")[:limit]
    clean = bytes(b if 0x20 <= b < 0x7F and b not in _UNSAFE_IN_TEXT else 0x3F for b in text)
    return b"E.%02x.%b" % (errno_for(exc) & 0xFF, clean)
