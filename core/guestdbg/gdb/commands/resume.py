"""``c`` ``C`` ``s`` ``S`` ``vCont?`` ``vCont``: resuming, with per-thread actions.

A signal in ``C``/``S``/``vCont;Cxx`` is parsed and dropped: a VMM has no signal to deliver to a
guest (QEMU ignores it too). ``vCont;r<start>,<end>`` is a range step: step while the PC stays
in ``[start, end)``; an empty or reversed range is refused as malformed (GDB never sends one).
``vCont;t`` (non-stop) is not offered by ``vCont?``, so it is refused as malformed rather than
guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, parse_hex, parse_thread_id


@dataclass(frozen=True, slots=True)
class Resume:
    """Legacy ``c``/``s`` (and ``C``/``S``): the ``Hc`` thread, optionally from ``addr``."""

    step: bool
    addr: int | None = None


@dataclass(frozen=True, slots=True)
class VContQuery:
    pass


@dataclass(frozen=True, slots=True)
class VContAction:
    step: bool
    thread: int | None
    """None: every thread not named by an earlier action (the default action)."""
    range: tuple[int, int] | None = None
    """``r``: step while the PC is in ``[start, end)`` (``step`` is True)."""


@dataclass(frozen=True, slots=True)
class VCont:
    actions: tuple[VContAction, ...]


def parse_c_s(body: bytes) -> Resume:
    letter = body[:1]
    rest = body[1:]
    if letter in (b"C", b"S"):
        sig, _, rest = rest.partition(b";")
        parse_hex(sig, "signal")
    addr = parse_hex(rest, "address") if rest else None
    return Resume(step=letter in (b"s", b"S"), addr=addr)


def parse_vcont(body: bytes) -> VContQuery | VCont:
    rest = body[len(b"vCont") :]
    if rest == b"?":
        return VContQuery()
    if rest[:1] != b";" or len(rest) < 2:
        raise PacketError("'vCont' needs ';action'")
    actions = []
    for item in rest[1:].split(b";"):
        verb, colon, thread = item.partition(b":")
        span = None
        if verb in (b"c", b"s"):
            step = verb == b"s"
        elif verb[:1] in (b"C", b"S") and len(verb) > 1:
            parse_hex(verb[1:], "signal")
            step = verb[:1] == b"S"
        elif verb[:1] == b"r":
            step, span = True, parse_range(verb[1:])
        else:
            raise PacketError(f"unsupported vCont action {verb[:10]!r}")
        if colon and not thread:
            raise PacketError("vCont action with an empty thread id")
        actions.append(VContAction(step, parse_thread_id(thread) if colon else None, span))
    return VCont(tuple(actions))


def parse_range(text: bytes) -> tuple[int, int]:
    """``<start>,<end>`` of a ``vCont;r`` action: hex, start below end."""
    if b"," not in text:
        raise PacketError(f"vCont range step needs 'start,end': {text[:40]!r}")
    first, _, second = text.partition(b",")
    start = parse_hex(first, "range start")
    end = parse_hex(second, "range end")
    if start >= end:
        raise PacketError(f"vCont range step: empty range [{start:#x}, {end:#x})")
    return start, end
