"""The RSP wire format: ``$body#cs`` framing, acknowledgements, binary escapes, run-length encoding.

GDB manual, "Remote Protocol" > "Overview". What the stub receives is scanned chunk by chunk with
``bytes.find`` (a 4 KiB ``X`` packet costs a few C-level scans, not 4096 Python iterations), and
the body is never stored past the advertised ``PacketSize``: an oversized packet is still read to
its ``#cs`` so the stream stays in sync, then reported as oversized, so a hostile client cannot
grow our memory. Between packets only ``+``, ``-`` and the 0x03 interrupt byte mean anything; a
0x03 *inside* a body is data (an escaped ``#`` in an ``X`` payload is ``}`` 0x03).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

ESCAPE = 0x7D
"""``}``: the next byte is the original XOR 0x20 (binary data only)."""
INTERRUPT = 0x03
"""Ctrl-C from GDB, sent raw between packets (manual, "Interrupts")."""
_MUST_ESCAPE = b"#$}*"
HEXDIGITS = b"0123456789abcdefABCDEF"
"""What ``bytes.translate(None, HEXDIGITS)`` leaves empty: the hex digits of either case."""

RLE_MIN_RUN = 4
"""Shorter runs are not shortened by ``c*N`` (3 bytes)."""
_RLE_MAX_EXTRA = 126 - 29
"""The count byte is ``29 + extra copies`` and must stay printable (manual, "Overview")."""
_RLE_FORBIDDEN = frozenset({ord("#") - 29, ord("$") - 29})
"""Counts whose byte would be ``#`` or ``$`` (6 and 7 extra copies) must not be sent."""


def checksum(data: bytes) -> int:
    """The sum of the bytes as sent (after escaping and run-length encoding), modulo 256."""
    return sum(data) & 0xFF


def frame(body: bytes) -> bytes:
    """``$body#cs``. ``body`` must already be escaped or hex, i.e. free of ``$`` and ``#``."""
    return b"$%b#%02x" % (body, sum(body) & 0xFF)


def escape_binary(data: bytes) -> bytes:
    """Binary data for a reply (``qXfer``): ``# $ } *`` become ``}`` + byte XOR 0x20."""
    if not any(c in data for c in (b"#", b"$", b"}", b"*")):
        return data
    out = bytearray()
    for byte in data:
        if byte in _MUST_ESCAPE:
            out.append(ESCAPE)
            out.append(byte ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


class EscapeError(ValueError):
    """Binary data ends in the middle of an escape pair."""


def unescape_binary(data: bytes) -> bytes:
    """The binary payload of an ``X`` packet, escapes undone."""
    if b"}" not in data:
        return data
    out = bytearray()
    pending = False
    for byte in data:
        if pending:
            out.append(byte ^ 0x20)
            pending = False
        elif byte == ESCAPE:
            pending = True
        else:
            out.append(byte)
    if pending:
        raise EscapeError("binary data ends with a lone escape byte")
    return bytes(out)


def _encode_run(m: re.Match[bytes]) -> bytes:
    run = m.group()
    c = run[:1]
    left = len(run)
    out = []
    while left >= RLE_MIN_RUN:
        extra = min(left - 1, _RLE_MAX_EXTRA)
        if extra in _RLE_FORBIDDEN:
            extra = min(_RLE_FORBIDDEN) - 1
        out.append(c + b"*" + bytes((29 + extra,)))
        left -= extra + 1
    out.append(c * left)
    return b"".join(out)


_RUN = re.compile(rb"([^#$}*])\1{%d,}" % (RLE_MIN_RUN - 1), re.DOTALL)


def run_length_encode(body: bytes) -> bytes:
    """Shorten runs of one character as ``c*N`` (GDB remote.c read_frame: N - 29 extra copies).

    Only for text replies (hex): GDB expands runs before it undoes binary escapes, so binary
    replies are never encoded. A run needing 6 or 7 extra copies is cut to 5 so the count byte
    is never ``#`` or ``$``; the characters that frame or escape are never run-encoded.
    """
    return _RUN.sub(_encode_run, body)


def run_length_decode(body: bytes) -> bytes:
    """Expand ``c*N`` runs as GDB's read_frame does (the reference the encoder is tested on)."""
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == 0x2A and out and i + 1 < n:
            out += out[-1:] * (body[i + 1] - 29)
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


class Signal(enum.Enum):
    """A single byte between packets."""

    ACK = "+"
    NACK = "-"
    INTERRUPT = "^C"


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete ``$...#cs``. ``body`` is empty when ``oversized`` (it was not kept)."""

    body: bytes
    checksum_ok: bool
    oversized: bool = False


Received = Frame | Signal

_SINGLE_FRAME_BYTES = 72
_SINGLE_FRAME_ENTRIES = 256
_SINGLE_FRAMES: dict[bytes, Frame] = {}
"""Whole short reads (``$body#cs``) and the frame each made: GDB sends the same few packets at
every breakpoint hit, and a frame is immutable. Starts over when full."""


class PacketReader:
    """Turns the byte stream from GDB into frames and signals, whatever the chunking."""

    __slots__ = (
        "_body",
        "_csum",
        "_digits",
        "_in_body",
        "_in_csum",
        "_kept",
        "_oversized",
        "max_body",
    )

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._body: list[bytes] = []
        self._kept = 0
        self._csum = 0
        self._digits = b""
        self._in_body = False
        self._in_csum = False
        self._oversized = False

    @property
    def buffered(self) -> int:
        """Body bytes held for an unfinished packet (never more than ``max_body``)."""
        return self._kept

    def _start(self) -> None:
        self._body.clear()
        self._kept = 0
        self._csum = 0
        self._digits = b""
        self._in_body = True
        self._in_csum = False
        self._oversized = False

    def feed(self, data: bytes) -> list[Received]:
        if not self._in_body and not self._in_csum:
            single = self._single_frame(data)
            if single is not None:
                return [single]
        out: list[Received] = []
        i = 0
        n = len(data)
        while i < n:
            if self._in_csum:
                take = data[i : i + 2 - len(self._digits)]
                self._digits += take
                i += len(take)
                if len(self._digits) == 2:
                    out.append(self._finish())
                continue
            if self._in_body:
                end = data.find(b"#", i)
                stop = n if end < 0 else end
                # A '$' inside a body: the old packet was cut short; GDB read_frame restarts too.
                restart = data.rfind(b"$", i, stop)
                if restart >= 0:
                    self._start()
                    i = restart + 1
                    continue
                chunk = data[i:stop]
                self._csum += sum(chunk)
                if not self._oversized:
                    if self._kept + len(chunk) > self.max_body:
                        self._oversized = True
                        self._body.clear()
                        self._kept = 0
                    else:
                        self._body.append(chunk)
                        self._kept += len(chunk)
                if end < 0:
                    return out
                self._in_body = False
                self._in_csum = True
                i = end + 1
                continue
            start = data.find(b"$", i)
            stop = n if start < 0 else start
            if stop > i:
                self._between_packets(data[i:stop], out)
            if start < 0:
                return out
            self._start()
            i = start + 1
        return out

    def _single_frame(self, data: bytes) -> Frame | None:
        """The common case in no-ack mode, one whole packet per read (``$body#cs`` and nothing
        else), checked with a few C-level scans; None sends anything else the general way.
        Short reads that made a frame are remembered with it (:data:`_SINGLE_FRAMES`)."""
        fr = _SINGLE_FRAMES.get(data)
        if fr is not None and len(fr.body) <= self.max_body:
            return fr
        n = len(data)
        if n < 4 or data[0] != 0x24 or data[n - 3] != 0x23:  # '$' ... '#' c c
            return None
        body = data[1 : n - 3]
        if len(body) > self.max_body or b"#" in body or b"$" in body:
            return None
        digits = data[n - 2 :]
        ok = not digits.translate(None, HEXDIGITS) and int(digits, 16) == sum(body) & 0xFF
        fr = Frame(body, ok)
        if n <= _SINGLE_FRAME_BYTES:
            if len(_SINGLE_FRAMES) >= _SINGLE_FRAME_ENTRIES:
                _SINGLE_FRAMES.clear()
            _SINGLE_FRAMES[data] = fr
        return fr

    @staticmethod
    def _between_packets(junk: bytes, out: list[Received]) -> None:
        if len(junk) == 1:
            if junk == b"+":
                out.append(Signal.ACK)
            elif junk == b"-":
                out.append(Signal.NACK)
            elif junk == b"\x03":
                out.append(Signal.INTERRUPT)
            return
        for byte in junk:
            if byte == 0x2B:
                out.append(Signal.ACK)
            elif byte == 0x2D:
                out.append(Signal.NACK)
            elif byte == INTERRUPT:
                out.append(Signal.INTERRUPT)

    def _finish(self) -> Frame:
        self._in_csum = False
        digits = self._digits
        oversized = self._oversized
        body = b"" if oversized else b"".join(self._body)
        self._oversized = False
        self._body.clear()
        self._kept = 0
        ok = (
            len(digits) == 2
            and not digits.translate(None, HEXDIGITS)
            and int(digits, 16) == self._csum & 0xFF
        )
        return Frame(body, ok, oversized)


class BinaryReply(bytes):
    """A reply body carrying escaped binary data (``qXfer``): framed as is, never run-length
    encoded, because GDB expands runs before it undoes escapes."""
