"""Serving the connection packets: feature negotiation, no-ack mode, ``?``, detach and kill.

``D`` and ``k`` both detach (every point removed, hardware debug state cleared, guest resumed)
and close the connection: GDB never kills the VM. ``qAttached`` is 1 so that quitting GDB
detaches rather than kills (QEMU does the same).
"""

from __future__ import annotations

from ..commands.connection import (
    Detach,
    HaltReason,
    Kill,
    QueryAttached,
    QuerySupported,
    StartNoAckMode,
)
from ..context import StubContext
from ..stop_reply import format_stop_reply


def query_supported(ctx: StubContext, cmd: QuerySupported) -> bytes:
    ctx.client = cmd.client_features
    return ctx.features.qsupported_reply()


def start_no_ack_mode(ctx: StubContext, cmd: StartNoAckMode) -> bytes:
    """Acks stop after this ``OK`` (and its own ack) went out; the stub applies the switch."""
    ctx.no_ack_requested = True
    return b"OK"


def halt_reason(ctx: StubContext, cmd: HaltReason) -> bytes:
    ev = ctx.last_stop
    return format_stop_reply(
        ev,
        ctx.features,
        ctx.client,
        ctx.codec,
        ctx.expedite,
        ctx.expedite_values(ev.vcpu),
    )


def query_attached(ctx: StubContext, cmd: QueryAttached) -> bytes:
    return b"1"


def detach(ctx: StubContext, cmd: Detach) -> bytes:
    ctx.detach_once()
    return b"OK"


def kill(ctx: StubContext, cmd: Kill) -> bytes | None:
    ctx.detach_once()
    return b"OK" if cmd.reply else None


HANDLERS = {
    QuerySupported: query_supported,
    StartNoAckMode: start_no_ack_mode,
    HaltReason: halt_reason,
    QueryAttached: query_attached,
    Detach: detach,
    Kill: kill,
}
