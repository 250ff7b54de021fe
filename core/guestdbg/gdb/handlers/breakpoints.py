"""Serving ``Z``/``z``: GDB's breakpoint and watchpoint types become :class:`DebugPoint`.

The arch's limits are the target's to enforce (it raises NoFreeSlot, UnsupportedByArch...,
each its own ``E`` code, sent with the reason as ``E.nn.text``: see
:mod:`guestdbg.gdb.error_replies`). A type whose whole facility is missing gets the empty reply
instead, which tells GDB the packet is unsupported, just as ``qSupported`` left it out.
"""

from __future__ import annotations

import logging

from ...errors import GuestDebugError, InvalidRequest, UnsupportedByArch
from ...points import DebugPoint, PointKind
from ..commands.breakpoints import PointCommand
from ..conditions import AgentCondition
from ..context import StubContext
from ..error_replies import error_text_reply

log = logging.getLogger(__name__)


def point(ctx: StubContext, cmd: PointCommand) -> bytes:
    if not ctx.features.supports_point_type(cmd.gdb_type):
        return b""
    try:
        if cmd.kind == 0:
            raise InvalidRequest("breakpoint or watchpoint of length 0")
        p = DebugPoint(PointKind.from_gdb_type(cmd.gdb_type), cmd.addr, cmd.kind)
        if cmd.insert:
            _insert(ctx, p, cmd)
        else:
            ctx.target.remove_point(p)
            ctx.gdb_breakpoints.discard((cmd.gdb_type, cmd.addr))
    except GuestDebugError as e:
        if cmd.insert and isinstance(e, UnsupportedByArch):
            # GDB 13 shows the reason only for Z1: say it where the VMM's user sees it too
            log.warning("refused %s %#x: %s", PointKind.from_gdb_type(cmd.gdb_type).value,
                        cmd.addr, e)  # fmt: skip
        return error_text_reply(e)
    ctx.skips.point(cmd.gdb_type, cmd.addr, cmd.insert)
    return b"OK"


def _insert(ctx: StubContext, p: DebugPoint, cmd: PointCommand) -> None:
    """A breakpoint GDB already inserted on this connection only changes its conditions: GDB
    sends ``Z0`` again, without ``z0``, for a location whose condition changed (as gdbserver
    takes it: the new list replaces the old)."""
    condition = None
    if cmd.conditions:
        if not ctx.features.conditions or p.kind.is_watch:
            raise InvalidRequest("conditions are not offered for this breakpoint type")
        condition = AgentCondition.parse(cmd.conditions, ctx.target.gdb_arch)
    key = (cmd.gdb_type, cmd.addr)
    if p.kind.is_watch:
        ctx.target.insert_point(p)
    elif key in ctx.gdb_breakpoints and ctx.features.conditions:
        ctx.target.set_condition(p, condition)  # type: ignore[attr-defined]
    else:
        if condition is None:
            ctx.target.insert_point(p)
        else:
            ctx.target.insert_point(p, condition)  # type: ignore[call-arg]
        ctx.gdb_breakpoints.add(key)


HANDLERS = {PointCommand: point}
