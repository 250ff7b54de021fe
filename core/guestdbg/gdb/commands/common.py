"""What every packet family's parser shares: the parse error, strict hex numbers, thread ids.

Python's ``int(x, 16)`` accepts ``0x`` prefixes, signs, underscores and whitespace; GDB never
sends those, so a packet containing them is malformed and must not be half-understood. Numbers
are capped at 64 bits (16 digits): addresses and lengths beyond that are not a target's.
"""

from __future__ import annotations

from ...errors import InvalidRequest
from ..wire import HEXDIGITS

MAX_HEX_DIGITS = 16

THREAD_ALL = -1
"""Thread id ``-1``: every thread (vCont default action, ``Hc-1``)."""
THREAD_ANY = 0
"""Thread id ``0``: any thread; the stub picks the one it last reported."""


class PacketError(InvalidRequest):
    """A packet that is malformed on its face (the stub answers ``E16``, EINVAL)."""


def parse_hex(text: bytes, what: str = "number") -> int:
    if not text or len(text) > MAX_HEX_DIGITS or text.translate(None, HEXDIGITS):
        raise PacketError(f"bad hex {what}: {text[:40]!r}")
    return int(text, 16)


def parse_hex_bytes(text: bytes) -> bytes:
    """Hex pairs as bytes (``M`` data, ``qRcmd`` text)."""
    if len(text) % 2 or text.translate(None, HEXDIGITS):
        raise PacketError(f"bad hex data: {text[:40]!r}")
    return bytes.fromhex(text.decode("ascii"))


def split_once(text: bytes, sep: bytes, what: str) -> tuple[bytes, bytes]:
    head, found, tail = text.partition(sep)
    if not found:
        raise PacketError(f"{what}: missing {sep.decode()!r}")
    return head, tail


def after_name(body: bytes, name: bytes, sep: bytes) -> bytes:
    """What follows ``name`` and its separator; the separator must come right after the name."""
    rest = body[len(name) :]
    if rest[:1] != sep:
        raise PacketError(f"'{name.decode()}' must be followed by {sep.decode()!r}")
    return rest[1:]


def parse_thread_id(text: bytes) -> int:
    """``-1``, ``0``, hex tid, or the multiprocess form ``p<pid>.<tid>`` (pid ignored: one VM).

    GDB uses ``p`` ids only after ``multiprocess+``, which this stub does not advertise; they are
    accepted anyway (robustness: gdbstub issue 152 was a client sending ids the stub refused).
    """
    if text[:1] == b"p":
        pid, dot, tid = text[1:].partition(b".")
        if pid != b"-1":
            parse_hex(pid, "process id")
        if not dot:
            return THREAD_ALL
        text = tid
    if text == b"-1":
        return THREAD_ALL
    return parse_hex(text, "thread id")


def format_thread_id(tid: int) -> bytes:
    return b"%x" % tid
