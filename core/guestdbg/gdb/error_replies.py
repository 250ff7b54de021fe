"""Which ``Enn`` reply each failure gets: one errno-like code per kind of failure.

GDB 13 shows ``Enn`` codes to the user without interpreting them (manual, "Standard Replies";
the textual ``E.msg`` form needs the client's ``error-message`` feature, newer than GDB 13), so
the code is what tells a user or a script which limit was hit: the Linux errno whose meaning is
closest. Looked up along the exception's MRO, most specific class first.
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
