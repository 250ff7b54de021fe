"""Packets about the connection itself: ``qSupported`` ``QStartNoAckMode`` ``?`` ``qAttached``
``D`` ``k`` ``vKill``."""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, after_name, parse_hex


@dataclass(frozen=True, slots=True)
class QuerySupported:
    client_features: frozenset[str]
    """What GDB says it supports: ``swbreak``, ``hwbreak``, ``vContSupported``... (``+`` ones)."""


@dataclass(frozen=True, slots=True)
class StartNoAckMode:
    pass


@dataclass(frozen=True, slots=True)
class HaltReason:
    pass


@dataclass(frozen=True, slots=True)
class QueryAttached:
    pass


@dataclass(frozen=True, slots=True)
class Detach:
    pass


@dataclass(frozen=True, slots=True)
class Kill:
    reply: bool
    """``vKill`` expects ``OK``; ``k`` expects nothing."""


def parse_qSupported(body: bytes) -> QuerySupported:
    features = after_name(body, b"qSupported", b":") if body != b"qSupported" else b""
    plus = set()
    for item in features.split(b";") if features else ():
        if item.endswith(b"+"):
            plus.add(item[:-1].decode("ascii", "replace"))
    return QuerySupported(frozenset(plus))


def parse_QStartNoAckMode(body: bytes) -> StartNoAckMode:
    if body != b"QStartNoAckMode":
        raise PacketError("'QStartNoAckMode' takes no argument")
    return StartNoAckMode()


def parse_question(body: bytes) -> HaltReason:
    if body != b"?":
        raise PacketError("'?' takes no argument")
    return HaltReason()


def parse_qAttached(body: bytes) -> QueryAttached:
    if body != b"qAttached":
        parse_hex(after_name(body, b"qAttached", b":"), "process id")
    return QueryAttached()


def parse_D(body: bytes) -> Detach:
    rest = body[1:]
    if rest and (rest[:1] != b";" or not rest[1:]):
        raise PacketError("'D' takes an optional ;pid")
    if rest:
        parse_hex(rest[1:], "process id")
    return Detach()


def parse_k(body: bytes) -> Kill:
    if body != b"k":
        raise PacketError("'k' takes no argument")
    return Kill(reply=False)


def parse_vKill(body: bytes) -> Kill:
    parse_hex(after_name(body, b"vKill", b";"), "process id")
    return Kill(reply=True)
