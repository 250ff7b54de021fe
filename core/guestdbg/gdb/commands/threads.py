"""Thread packets, one thread per vCPU: ``H`` ``T`` ``qfThreadInfo`` ``qsThreadInfo`` ``qC``
``qThreadExtraInfo``."""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, after_name, parse_thread_id


@dataclass(frozen=True, slots=True)
class SetThread:
    """``Hg`` selects the thread for registers and memory, ``Hc`` the one ``c``/``s`` resume."""

    op: str
    thread: int


@dataclass(frozen=True, slots=True)
class ThreadAlive:
    thread: int


@dataclass(frozen=True, slots=True)
class ThreadListFirst:
    pass


@dataclass(frozen=True, slots=True)
class ThreadListNext:
    pass


@dataclass(frozen=True, slots=True)
class CurrentThread:
    pass


@dataclass(frozen=True, slots=True)
class ThreadExtraInfo:
    thread: int


def parse_H(body: bytes) -> SetThread:
    op = body[1:2]
    if op not in (b"g", b"c"):
        raise PacketError(f"'H' needs g or c, not {op!r}")
    return SetThread(op.decode(), parse_thread_id(body[2:]))


def parse_T(body: bytes) -> ThreadAlive:
    return ThreadAlive(parse_thread_id(body[1:]))


def parse_qfThreadInfo(body: bytes) -> ThreadListFirst:
    if body != b"qfThreadInfo":
        raise PacketError("'qfThreadInfo' takes no argument")
    return ThreadListFirst()


def parse_qsThreadInfo(body: bytes) -> ThreadListNext:
    if body != b"qsThreadInfo":
        raise PacketError("'qsThreadInfo' takes no argument")
    return ThreadListNext()


def parse_qC(body: bytes) -> CurrentThread:
    if body != b"qC":
        raise PacketError("'qC' takes no argument")
    return CurrentThread()


def parse_qThreadExtraInfo(body: bytes) -> ThreadExtraInfo:
    return ThreadExtraInfo(parse_thread_id(after_name(body, b"qThreadExtraInfo", b",")))
