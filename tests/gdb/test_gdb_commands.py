"""Packet bodies become typed commands; malformed ones raise PacketError, unknown ones are None."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
import pytest
from hypothesis import given

from guestdbg.errors import InvalidRequest
from guestdbg.gdb.commands import PacketError, parse_command
from guestdbg.gdb.commands.breakpoints import PointCommand
from guestdbg.gdb.commands.common import THREAD_ALL, THREAD_ANY
from guestdbg.gdb.commands.connection import Detach, Kill, QueryAttached, QuerySupported
from guestdbg.gdb.commands.memory import ReadMemory, WriteMemory
from guestdbg.gdb.commands.monitor import MonitorCommand
from guestdbg.gdb.commands.registers import (
    ReadRegister,
    ReadRegisters,
    WriteRegister,
    WriteRegisters,
)
from guestdbg.gdb.commands.resume import Resume, VCont, VContAction, VContQuery
from guestdbg.gdb.commands.target_xml import ReadFeatures
from guestdbg.gdb.commands.threads import SetThread, ThreadAlive, ThreadExtraInfo


@pytest.mark.parametrize(
    ("body", "command"),
    [
        (b"g", ReadRegisters()),
        (b"G0011", WriteRegisters(b"0011")),
        (b"p20", ReadRegister(0x20)),
        (b"P20=00001000", WriteRegister(0x20, b"00001000")),
        (b"m1000,4", ReadMemory(0x1000, 4)),
        (b"M1000,2:beef", WriteMemory(0x1000, b"\xbe\xef")),
        (b"X1000,2:a}\x03", WriteMemory(0x1000, b"a#")),
        (b"X1000,0:", WriteMemory(0x1000, b"")),
        (b"Z0,1010,4", PointCommand(True, 0, 0x1010, 4)),
        (b"z2,2000,8", PointCommand(False, 2, 0x2000, 8)),
        (b"c", Resume(step=False)),
        (b"s", Resume(step=True)),
        (b"c1000", Resume(step=False, addr=0x1000)),
        (b"C05", Resume(step=False)),
        (b"S05;1004", Resume(step=True, addr=0x1004)),
        (b"vCont?", VContQuery()),
        (b"vCont;c", VCont((VContAction(False, None),))),
        (b"vCont;s:1;c", VCont((VContAction(True, 1), VContAction(False, None)))),
        (b"vCont;C05:2;c:-1", VCont((VContAction(False, 2), VContAction(False, THREAD_ALL)))),
        (b"vCont;s:p1.3", VCont((VContAction(True, 3),))),
        (b"vCont;c:0", VCont((VContAction(False, THREAD_ANY),))),
        (b"vCont;r1000,1010:1", VCont((VContAction(True, 1, (0x1000, 0x1010)),))),
        (
            b"vCont;r1000,1001:p1.2;c",
            VCont((VContAction(True, 2, (0x1000, 0x1001)), VContAction(False, None))),
        ),
        (b"vCont;rA0,FF", VCont((VContAction(True, None, (0xA0, 0xFF)),))),
        (b"Hg0", SetThread("g", THREAD_ANY)),
        (b"Hc-1", SetThread("c", THREAD_ALL)),
        (b"Hgp1.2", SetThread("g", 2)),
        (b"T3", ThreadAlive(3)),
        (b"qThreadExtraInfo,a", ThreadExtraInfo(10)),
        (b"qAttached", QueryAttached()),
        (b"qAttached:1", QueryAttached()),
        (b"D", Detach()),
        (b"D;1", Detach()),
        (b"k", Kill(reply=False)),
        (b"vKill;1", Kill(reply=True)),
        (b"qRcmd,706f696e7473", MonitorCommand("points")),
        (
            b"qXfer:features:read:target.xml:0,ffb",
            ReadFeatures("target.xml", 0, 0xFFB),
        ),
    ],
)
def test_packet_parses_to_its_command(body: bytes, command: object) -> None:
    assert parse_command(body) == command


def test_qsupported_keeps_only_what_gdb_says_it_supports() -> None:
    cmd = parse_command(b"qSupported:multiprocess+;swbreak+;hwbreak-;xmlRegisters=i386")
    assert cmd == QuerySupported(frozenset({"multiprocess", "swbreak"}))
    assert parse_command(b"qSupported") == QuerySupported(frozenset())


@pytest.mark.parametrize(
    "body",
    [b"qTStatus", b"qOffsets", b"vMustReplyEmpty", b"qCRC:0,4", b"!", b"R00", b"bc",
     b"qXfer:auxv:read::0,10", b"vFile:open:2f,0,0", b"Q", b"q", b"v", b"qCx", b"qfThreadInfox",
     b"QStartNoAckModeX"],
)  # fmt: skip
def test_unimplemented_packets_are_none_for_the_empty_reply(body: bytes) -> None:
    assert parse_command(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b"m1000",  # no length
        b"m0x10,4",  # int(..., 16) would take this
        b"m+10,4",
        b"m 10,4",
        b"m1_0,4",
        b"m10000000000000000,4",  # more than 64 bits
        b"M1000,2:bee",  # odd hex
        b"M1000,3:beef",  # length disagrees
        b"X1000,2:ab}",  # lone escape
        b"X1000,5:ab",
        b"Z0,1000",
        b"Z0,1000,4;X2,0a",  # conditions are not advertised
        b"P20",
        b"P=1",
        b"pzz",
        b"gg",
        b"Hx1",
        b"H",
        b"Hg",
        b"T",
        b"vCont",
        b"vCont;",
        b"vCont;r1000:1",  # range step: no comma
        b"vCont;r1000;2000:1",
        b"vCont;r2000,1000:1",  # start above end
        b"vCont;r1000,1000:1",  # empty range
        b"vCont;r:1",  # no range at all
        b"vCont;r,:1",
        b"vCont;r1000,:1",
        b"vCont;r,2000",
        b"vCont;rzz,2000:1",  # not hex
        b"vCont;r1000,0x2000",
        b"vCont;r1000,2000,3000",
        b"vCont;r10000000000000000,10000000000000001",  # more than 64 bits
        b"vCont;r1000,2000:",
        b"vCont;t:1",  # non-stop: not offered
        b"vCont;s:",
        b"vCont;c:zz",
        b"qRcmd,7",
        b"qRcmd,00",  # not printable
        b"qRcmd",
        b"qXfer:features:read:target.xml:0",
        b"qXfer:features:read::0,10",
        b"qC1",
        b"D1",
        b"k1",
        b"?x",
        b"qThreadExtraInfo",
        b"Hgpzz.1",
        b"qRcmd;,68656c70",  # the separator must follow the name (found by the fuzz test)
        b"qThreadExtraInfo;,2",
        b"qSupported;x:swbreak+",
        b"qAttached1",
        b"vKill1",
    ],
)
def test_malformed_packets_raise_a_packet_error(body: bytes) -> None:
    with pytest.raises(PacketError):
        parse_command(body)


def test_a_packet_error_is_an_invalid_request_for_the_vmm() -> None:
    assert issubclass(PacketError, InvalidRequest)


@given(st.binary(max_size=80))
def test_any_bytes_parse_or_raise_packet_error_and_nothing_else(body: bytes) -> None:
    with contextlib.suppress(PacketError):
        parse_command(body)


def test_every_command_the_parser_makes_has_a_handler() -> None:
    """A packet family added to the parser without a handler would be answered with an
    internal error; the two tables must name the same command types."""
    import typing

    from guestdbg.gdb.commands import Command
    from guestdbg.gdb.handlers import HANDLERS

    assert set(typing.get_args(Command)) == set(HANDLERS)
