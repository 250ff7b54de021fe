"""``Z``/``z``: insert and remove a breakpoint or watchpoint (types 0-4).

``Z type,addr,kind[;X len,bytecode]...``: ``kind`` is the breakpoint size for types 0-1 and the
watched length for 2-4. After ``ConditionalBreakpoints+`` GDB appends a breakpoint's conditions,
each an agent expression, ``;X`` then its length and its bytes in hex (GDB manual, "Packets",
``Z0``); the breakpoint stops when any of them is true. Command lists (``;cmds:``) come only
after ``BreakpointCommands+``, which this stub does not offer: a packet carrying them is refused
rather than half-obeyed, as is a ``z`` with anything after its kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, parse_hex, parse_hex_bytes


@dataclass(frozen=True, slots=True)
class PointCommand:
    insert: bool
    gdb_type: int
    addr: int
    kind: int
    conditions: tuple[bytes, ...] = ()
    """Agent-expression bytecode, one per ``;X`` (not yet checked: the handler parses it)."""


def parse_Z(body: bytes) -> PointCommand:
    head, *options = body.split(b";")
    fields = head[1:].split(b",")
    if len(fields) != 3:
        raise PacketError(f"'{body[:1].decode()}' needs type,addr,kind")
    insert = body[:1] == b"Z"
    if options and not insert:
        raise PacketError("'z' takes no conditions")
    conditions = tuple(_condition(o) for o in options)
    return PointCommand(
        insert=insert,
        gdb_type=parse_hex(fields[0], "breakpoint type"),
        addr=parse_hex(fields[1], "address"),
        kind=parse_hex(fields[2], "kind"),
        conditions=conditions,
    )


def _condition(option: bytes) -> bytes:
    if option.startswith(b"cmds:"):
        raise PacketError("breakpoint command lists are not supported")
    if not option.startswith(b"X"):
        raise PacketError(f"unknown breakpoint option {option[:20]!r}")
    length, sep, code = option[1:].partition(b",")
    if not sep:
        raise PacketError("a condition needs X<len>,<bytecode>")
    n = parse_hex(length, "condition length")
    data = parse_hex_bytes(code)
    if n != len(data) or n == 0:
        raise PacketError(f"condition length {n} but {len(data)} bytes of bytecode")
    return data
