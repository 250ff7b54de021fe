"""Serving ``Z``/``z``: GDB's breakpoint and watchpoint types become :class:`DebugPoint`.

The arch's limits are the target's to enforce (it raises NoFreeSlot, UnsupportedByArch...,
each its own ``E`` code). A type whose whole facility is missing gets the empty reply instead,
which tells GDB the packet is unsupported, just as ``qSupported`` left it out.
"""

from __future__ import annotations

from ...errors import InvalidRequest
from ...points import DebugPoint, PointKind
from ..commands.breakpoints import PointCommand
from ..context import StubContext


def point(ctx: StubContext, cmd: PointCommand) -> bytes:
    if not ctx.features.supports_point_type(cmd.gdb_type):
        return b""
    if cmd.kind == 0:
        raise InvalidRequest("breakpoint or watchpoint of length 0")
    p = DebugPoint(PointKind.from_gdb_type(cmd.gdb_type), cmd.addr, cmd.kind)
    if cmd.insert:
        ctx.target.insert_point(p)
    else:
        ctx.target.remove_point(p)
    ctx.skips.point(cmd.gdb_type, cmd.addr, cmd.insert)
    return b"OK"


HANDLERS = {PointCommand: point}
