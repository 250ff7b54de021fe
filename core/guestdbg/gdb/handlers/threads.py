"""Serving the thread packets: thread id = vCPU index + 1, named by ``target.vcpu_name``.

``qfThreadInfo`` lists every vCPU in one reply when it fits ``PacketSize`` (one round trip
instead of a ``qsThreadInfo`` per thread); the rest follow on ``qsThreadInfo``.
"""

from __future__ import annotations

from ..commands.common import THREAD_ALL, THREAD_ANY, format_thread_id
from ..commands.threads import (
    CurrentThread,
    SetThread,
    ThreadAlive,
    ThreadExtraInfo,
    ThreadListFirst,
    ThreadListNext,
)
from ..context import StubContext
from ..error_replies import UnknownThread


def set_thread(ctx: StubContext, cmd: SetThread) -> bytes:
    if cmd.thread not in (THREAD_ANY, THREAD_ALL):
        ctx.vcpu_of(cmd.thread)
    if cmd.op == "g":
        ctx.general_thread = cmd.thread
    else:
        ctx.resume_thread = cmd.thread
    return b"OK"


def thread_alive(ctx: StubContext, cmd: ThreadAlive) -> bytes:
    if not 1 <= cmd.thread <= ctx.vcpus:
        raise UnknownThread(f"thread {cmd.thread} is not a vCPU")
    return b"OK"


def _list_from(ctx: StubContext, first: int) -> bytes:
    if first >= ctx.vcpus:
        return b"l"
    out = bytearray(b"m")
    vcpu = first
    limit = ctx.features.packet_size - 20
    while vcpu < ctx.vcpus and len(out) < limit:
        if vcpu > first:
            out += b","
        out += format_thread_id(vcpu + 1)
        vcpu += 1
    ctx.thread_cursor = vcpu
    return bytes(out)


def thread_list_first(ctx: StubContext, cmd: ThreadListFirst) -> bytes:
    return _list_from(ctx, 0)


def thread_list_next(ctx: StubContext, cmd: ThreadListNext) -> bytes:
    return _list_from(ctx, ctx.thread_cursor)


def current_thread(ctx: StubContext, cmd: CurrentThread) -> bytes:
    return b"QC" + format_thread_id(ctx.general_vcpu() + 1)


def thread_extra_info(ctx: StubContext, cmd: ThreadExtraInfo) -> bytes:
    vcpu = ctx.vcpu_of(cmd.thread)
    return ctx.target.vcpu_name(vcpu).encode("utf-8", "replace").hex().encode()


HANDLERS = {
    SetThread: set_thread,
    ThreadAlive: thread_alive,
    ThreadListFirst: thread_list_first,
    ThreadListNext: thread_list_next,
    CurrentThread: current_thread,
    ThreadExtraInfo: thread_extra_info,
}
