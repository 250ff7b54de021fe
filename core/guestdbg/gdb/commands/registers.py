"""``g`` ``G`` ``p`` ``P``: register packets, parsed without knowing the arch's layout.

The values stay hex text here: only the arch knows the widths, so the handler decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, parse_hex, split_once


@dataclass(frozen=True, slots=True)
class ReadRegisters:
    pass


@dataclass(frozen=True, slots=True)
class WriteRegisters:
    hex_values: bytes


@dataclass(frozen=True, slots=True)
class ReadRegister:
    regnum: int


@dataclass(frozen=True, slots=True)
class WriteRegister:
    regnum: int
    hex_value: bytes


def parse_g(body: bytes) -> ReadRegisters:
    if len(body) != 1:
        raise PacketError("'g' takes no argument")
    return ReadRegisters()


def parse_G(body: bytes) -> WriteRegisters:
    if len(body) < 2:
        raise PacketError("'G' without register data")
    return WriteRegisters(body[1:])


def parse_p(body: bytes) -> ReadRegister:
    return ReadRegister(parse_hex(body[1:], "register number"))


def parse_P(body: bytes) -> WriteRegister:
    regnum, value = split_once(body[1:], b"=", "'P'")
    if not value:
        raise PacketError("'P' without a value")
    return WriteRegister(parse_hex(regnum, "register number"), value)
