"""``qXfer:features:read:<annex>:<offset>,<length>``: the target description, in chunks."""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, parse_hex, split_once

PREFIX = b"qXfer:features:read:"


@dataclass(frozen=True, slots=True)
class ReadFeatures:
    annex: str
    offset: int
    length: int


def parse_qXfer(body: bytes) -> ReadFeatures | None:
    """None for objects other than ``features`` (unsupported: the empty reply)."""
    if not body.startswith(PREFIX):
        return None
    annex, span = split_once(body[len(PREFIX) :], b":", "qXfer")
    offset, length = split_once(span, b",", "qXfer")
    if not annex or not annex.isascii():
        raise PacketError("qXfer needs an annex")
    return ReadFeatures(
        annex.decode("ascii"), parse_hex(offset, "offset"), parse_hex(length, "length")
    )
