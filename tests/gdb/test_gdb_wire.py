"""The RSP wire format (GDB manual, "Overview"; gdb/remote.c read_frame)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings
from rsp_client import expand_runs, make_packet

from guestdbg.gdb.wire import (
    Frame,
    PacketReader,
    Signal,
    checksum,
    escape_binary,
    frame,
    run_length_decode,
    run_length_encode,
    unescape_binary,
)

HEX_TEXT = st.text(alphabet="0123456789abcdefxOKE;:,T", max_size=300).map(str.encode)


def test_frame_matches_the_manuals_example() -> None:
    # GDB manual, "Overview": the checksum of "OK" is 0x9a.
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"") == b"$#00"
    assert checksum(b"qSupported") == sum(b"qSupported") % 256


@given(st.binary(max_size=200))
def test_escaping_round_trips_and_leaves_no_framing_bytes(data: bytes) -> None:
    esc = escape_binary(data)
    assert unescape_binary(esc) == data
    assert not any(c in esc for c in (b"#", b"$", b"*"))
    assert esc.count(b"}") == sum(data.count(c) for c in b"#$}*")


def test_escape_is_xor_0x20() -> None:
    assert escape_binary(b"a#b") == b"a}\x03b"
    assert escape_binary(b"}") == b"}]"
    assert unescape_binary(b"}]}\x04") == b"}$"


@given(HEX_TEXT)
def test_run_length_encoding_expands_back_the_way_gdb_reads_it(text: bytes) -> None:
    enc = run_length_encode(text)
    assert expand_runs(enc) == text
    assert run_length_decode(enc) == text
    assert len(enc) <= len(text)


@given(st.integers(min_value=1, max_value=400), st.sampled_from(b"0fx"))
def test_run_counts_never_use_hash_or_dollar(n: int, c: int) -> None:
    enc = run_length_encode(bytes([c]) * n)
    assert b"#" not in enc and b"$" not in enc
    assert expand_runs(enc) == bytes([c]) * n


def test_long_runs_shrink_and_counts_6_and_7_are_avoided() -> None:
    assert run_length_encode(b"0" * 9) == b"0*%"  # 8 extra copies: 29 + 8 = '%'
    assert run_length_encode(b"0" * 8) == b'0*"00'  # 7 extra would be '$': 5, then 2 literal
    assert run_length_encode(b"000") == b"000"


def _feed_in_pieces(reader: PacketReader, data: bytes, cuts: list[int]) -> list[object]:
    out: list[object] = []
    last = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += reader.feed(data[last:cut])
        last = cut
    return out


STREAM_ITEMS = st.one_of(
    st.binary(max_size=60).map(lambda b: make_packet(b.replace(b"#", b"").replace(b"$", b""))),
    st.sampled_from([b"+", b"-", b"\x03"]),
)


@given(st.lists(STREAM_ITEMS, max_size=12), st.lists(st.integers(min_value=0), max_size=8))
def test_reader_result_does_not_depend_on_how_the_stream_is_cut(
    items: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(items)
    whole = PacketReader(4096).feed(data)
    pieces = _feed_in_pieces(PacketReader(4096), data, cuts)
    assert pieces == whole
    assert len(whole) == len(items)


def test_reader_reports_acks_interrupt_and_frames_in_order() -> None:
    got = PacketReader(100).feed(b"+$g#67-\x03$m0,4#fd")
    assert got == [
        Signal.ACK,
        Frame(b"g", True),
        Signal.NACK,
        Signal.INTERRUPT,
        Frame(b"m0,4", True),
    ]


def test_a_0x03_inside_a_packet_is_data_not_an_interrupt() -> None:
    body = b"X1000,1:}\x03"  # an escaped '#'
    got = PacketReader(100).feed(make_packet(body))
    assert got == [Frame(body, True)]


def test_bad_checksum_is_flagged() -> None:
    (fr,) = PacketReader(100).feed(b"$g#00")
    assert fr == Frame(b"g", False)
    (fr,) = PacketReader(100).feed(b"$g#zz")
    assert isinstance(fr, Frame) and not fr.checksum_ok


def test_a_dollar_inside_a_body_restarts_the_packet_like_gdb() -> None:
    assert PacketReader(100).feed(b"$garbage$g#67") == [Frame(b"g", True)]


def test_oversized_packet_is_reported_and_never_buffered_past_the_limit() -> None:
    reader = PacketReader(64)
    body = b"M1000,400:" + b"00" * 1024
    packet = make_packet(body)
    peak = 0
    got: list[object] = []
    for at in range(0, len(packet), 7):
        got += reader.feed(packet[at : at + 7])
        peak = max(peak, reader.buffered)
    assert got == [Frame(b"", True, oversized=True)]
    assert peak <= 64
    # The stream stays in sync: the next packet is read normally.
    assert reader.feed(make_packet(b"g")) == [Frame(b"g", True)]


@settings(max_examples=50)
@given(st.binary(max_size=300))
def test_reader_never_buffers_more_than_its_limit_on_random_bytes(data: bytes) -> None:
    reader = PacketReader(32)
    for at in range(0, len(data), 5):
        reader.feed(data[at : at + 5])
        assert reader.buffered <= 32
