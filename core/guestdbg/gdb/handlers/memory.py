"""Serving ``m`` ``M`` ``X`` through the ``Hg`` thread's vCPU (its view of guest memory)."""

from __future__ import annotations

from ...errors import InvalidRequest
from ..commands.memory import ReadMemory, WriteMemory
from ..context import StubContext

ADDRESS_LIMIT = 1 << 64


def read_memory(ctx: StubContext, cmd: ReadMemory) -> bytes:
    """At most what fits one reply: the manual lets a reply carry fewer bytes than asked."""
    if cmd.length == 0:
        raise InvalidRequest("'m' of zero bytes")
    length = min(cmd.length, (ctx.features.packet_size - 1) // 2, ADDRESS_LIMIT - cmd.addr)
    data = ctx.target.read_memory(ctx.general_vcpu(), cmd.addr, length)
    return data[:length].hex().encode()


def write_memory(ctx: StubContext, cmd: WriteMemory) -> bytes:
    """A zero-length write is GDB probing for ``X`` support: it only needs ``OK``."""
    if cmd.data:
        if cmd.addr + len(cmd.data) > ADDRESS_LIMIT:
            raise InvalidRequest("write past the end of the address space")
        ctx.target.write_memory(ctx.general_vcpu(), cmd.addr, cmd.data)
    return b"OK"


HANDLERS = {
    ReadMemory: read_memory,
    WriteMemory: write_memory,
}
