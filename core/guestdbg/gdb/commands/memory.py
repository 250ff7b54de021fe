"""``m`` ``M`` ``X``: memory packets. ``X`` carries binary data with ``}`` escapes."""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import EscapeError, unescape_binary
from .common import PacketError, parse_hex, parse_hex_bytes, split_once


@dataclass(frozen=True, slots=True)
class ReadMemory:
    addr: int
    length: int


@dataclass(frozen=True, slots=True)
class WriteMemory:
    addr: int
    data: bytes


def _addr_length(text: bytes, what: str) -> tuple[int, int]:
    addr, length = split_once(text, b",", what)
    return parse_hex(addr, "address"), parse_hex(length, "length")


def parse_m(body: bytes) -> ReadMemory:
    addr, length = _addr_length(body[1:], "'m'")
    return ReadMemory(addr, length)


def parse_M(body: bytes) -> WriteMemory:
    head, data = split_once(body[1:], b":", "'M'")
    addr, length = _addr_length(head, "'M'")
    raw = parse_hex_bytes(data)
    if len(raw) != length:
        raise PacketError(f"'M' says {length} bytes but carries {len(raw)}")
    return WriteMemory(addr, raw)


def parse_X(body: bytes) -> WriteMemory:
    head, data = split_once(body[1:], b":", "'X'")
    addr, length = _addr_length(head, "'X'")
    try:
        raw = unescape_binary(data)
    except EscapeError as e:
        raise PacketError(f"'X': {e}") from None
    if len(raw) != length:
        raise PacketError(f"'X' says {length} bytes but carries {len(raw)}")
    return WriteMemory(addr, raw)
