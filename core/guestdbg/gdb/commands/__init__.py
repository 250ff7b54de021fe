"""Packet bodies parsed into typed commands, one module per packet family (as the ``gdbstub``
crate's ``src/protocol/commands/``). Parsing never touches the target: it only decides what the
packet asks for, or raises :class:`PacketError`. ``None`` means a packet this stub does not
implement, which GDB expects to be answered with the empty reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import breakpoints, connection, memory, monitor, registers, resume, target_xml, threads
from .breakpoints import PointCommand
from .common import PacketError
from .connection import Detach, HaltReason, Kill, QueryAttached, QuerySupported, StartNoAckMode
from .memory import ReadMemory, WriteMemory
from .monitor import MonitorCommand
from .registers import ReadRegister, ReadRegisters, WriteRegister, WriteRegisters
from .resume import Resume, VCont, VContQuery
from .target_xml import ReadFeatures
from .threads import (
    CurrentThread,
    SetThread,
    ThreadAlive,
    ThreadExtraInfo,
    ThreadListFirst,
    ThreadListNext,
)

Command = (
    PointCommand
    | Detach
    | HaltReason
    | Kill
    | QueryAttached
    | QuerySupported
    | StartNoAckMode
    | ReadMemory
    | WriteMemory
    | MonitorCommand
    | ReadRegister
    | ReadRegisters
    | WriteRegister
    | WriteRegisters
    | Resume
    | VCont
    | VContQuery
    | ReadFeatures
    | CurrentThread
    | SetThread
    | ThreadAlive
    | ThreadExtraInfo
    | ThreadListFirst
    | ThreadListNext
)

Parser = Callable[[bytes], Command | None]

BY_LETTER: dict[int, Parser] = {
    ord("?"): connection.parse_question,
    ord("g"): registers.parse_g,
    ord("G"): registers.parse_G,
    ord("p"): registers.parse_p,
    ord("P"): registers.parse_P,
    ord("m"): memory.parse_m,
    ord("M"): memory.parse_M,
    ord("X"): memory.parse_X,
    ord("Z"): breakpoints.parse_Z,
    ord("z"): breakpoints.parse_Z,
    ord("c"): resume.parse_c_s,
    ord("C"): resume.parse_c_s,
    ord("s"): resume.parse_c_s,
    ord("S"): resume.parse_c_s,
    ord("H"): threads.parse_H,
    ord("T"): threads.parse_T,
    ord("D"): connection.parse_D,
    ord("k"): connection.parse_k,
}
"""Single-letter packets, looked up by the body's first byte."""

BY_NAME: dict[bytes, Parser] = {
    b"qSupported": connection.parse_qSupported,
    b"QStartNoAckMode": connection.parse_QStartNoAckMode,
    b"qAttached": connection.parse_qAttached,
    b"qfThreadInfo": threads.parse_qfThreadInfo,
    b"qsThreadInfo": threads.parse_qsThreadInfo,
    b"qC": threads.parse_qC,
    b"qThreadExtraInfo": threads.parse_qThreadExtraInfo,
    b"qRcmd": monitor.parse_qRcmd,
    b"qXfer": target_xml.parse_qXfer,
    b"vCont": resume.parse_vcont,
    b"vKill": connection.parse_vKill,
}
"""Named packets (``q``, ``Q``, ``v``): the name is the leading run of letters."""

_NAME = re.compile(rb"[A-Za-z]+")
_NAMED = frozenset(b"qQv")


_CACHE_BODY = 64
"""Bodies up to this long are remembered with what they parsed to (:data:`_parsed`)."""
_CACHE_ENTRIES = 256
_parsed: dict[bytes, Command | None] = {}
"""Body -> command, for short bodies that parsed without error. GDB sends the same few packets
at every breakpoint hit (``z0``, ``m``, ``vCont;s``, ``Z0``, ``vCont;c`` with an ignore
count), and every command is immutable, so a repeated body is not parsed again; when full,
the cache starts over. Bodies that fail to parse are not kept (the error is raised again)."""


def parse_command(body: bytes) -> Command | None:
    """The command in one packet body; None for packets this stub does not implement."""
    if not body:
        return None
    if body in _parsed:
        return _parsed[body]
    first = body[0]
    if first in _NAMED:
        m = _NAME.match(body)
        parser = BY_NAME.get(m.group()) if m else None
    else:
        parser = BY_LETTER.get(first)
    cmd = parser(body) if parser else None
    if len(body) <= _CACHE_BODY:
        if len(_parsed) >= _CACHE_ENTRIES:
            _parsed.clear()
        _parsed[body] = cmd
    return cmd


__all__ = ["BY_LETTER", "BY_NAME", "Command", "PacketError", "parse_command"]
