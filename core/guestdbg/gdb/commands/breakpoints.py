"""``Z`` and ``z``: insert and remove a breakpoint or watchpoint (types 0-4).

``Z type,addr,kind``: ``kind`` is the breakpoint size for types 0-1 and the watched length for
2-4. Condition and command lists (``;X...``) come only after ``ConditionalBreakpoints+``, which
this stub does not advertise, so a packet carrying them is refused rather than half-obeyed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, parse_hex


@dataclass(frozen=True, slots=True)
class PointCommand:
    insert: bool
    gdb_type: int
    addr: int
    kind: int


def parse_Z(body: bytes) -> PointCommand:
    fields = body[1:].split(b",")
    if len(fields) != 3:
        raise PacketError(f"'{body[:1].decode()}' needs type,addr,kind")
    if b";" in fields[2]:
        raise PacketError("breakpoint conditions are not supported")
    return PointCommand(
        insert=body[:1] == b"Z",
        gdb_type=parse_hex(fields[0], "breakpoint type"),
        addr=parse_hex(fields[1], "address"),
        kind=parse_hex(fields[2], "kind"),
    )
