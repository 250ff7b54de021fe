"""The server over real sockets: safe listening defaults, lifecycle, detach exactly once."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from memtarget import MemTarget
from rsp_client import SocketClient, make_packet

from guestdbg.errors import InvalidRequest
from guestdbg.events import StopEvent
from guestdbg.gdb.server import GdbServer, RemoteExposureWarning, format_trace, is_loopback


def wait_until(cond: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait for another thread to get somewhere (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.005)


@pytest.fixture
def target() -> MemTarget:
    return MemTarget(vcpus=2)


@pytest.fixture
def server(target: MemTarget) -> Iterator[GdbServer]:
    srv = GdbServer(target, ("127.0.0.1", 0))
    srv.start()
    yield srv
    srv.close()


def tcp_client(srv: GdbServer) -> SocketClient:
    assert isinstance(srv.bound_address, tuple)
    return SocketClient(socket.create_connection(srv.bound_address))


# -- where it listens ----------------------------------------------------------------------


def test_loopback_tcp_is_the_default_and_port_0_reports_the_real_port(server: GdbServer) -> None:
    assert isinstance(server.bound_address, tuple)
    host, port = server.bound_address
    assert host == "127.0.0.1" and port > 0
    c = tcp_client(server)
    assert b"PacketSize=" in c.handshake()
    c.sock.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::"])
def test_a_non_loopback_address_is_refused_without_allow_remote(
    target: MemTarget, host: str
) -> None:
    with pytest.raises(InvalidRequest, match="allow_remote=True"):
        GdbServer(target, (host, 0))


def test_allow_remote_listens_but_warns_that_the_stub_is_exposed(target: MemTarget) -> None:
    with pytest.warns(RemoteExposureWarning, match="reachable from other hosts"):
        srv = GdbServer(target, ("0.0.0.0", 0), allow_remote=True)
    srv.close()


def test_loopback_names_are_recognised() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("8.8.8.8")


def test_unix_socket_is_private_to_its_owner_and_removed_on_close(
    target: MemTarget, tmp_path: Path
) -> None:
    path = str(tmp_path / "gdb.sock")
    srv = GdbServer(target, path)
    srv.start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    c = SocketClient(sock)
    c.handshake()
    assert c.ask(b"qAttached") == b"1"
    sock.close()
    srv.close()
    assert not os.path.exists(path)
    assert target.count.detach == 1


def test_a_stale_unix_socket_is_replaced_but_a_file_or_live_server_is_not(
    target: MemTarget, tmp_path: Path
) -> None:
    path = str(tmp_path / "gdb.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # a socket file nobody listens on
    first = GdbServer(target, path)
    with pytest.raises(InvalidRequest, match="another server"):
        GdbServer(target, path)
    first.close()
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(InvalidRequest, match="not a socket"):
        GdbServer(target, str(regular))
    assert regular.read_text() == "x"


def test_tcp_nodelay_is_set(server: GdbServer) -> None:
    c = tcp_client(server)
    c.handshake()
    conn = server.connection
    assert conn is not None
    assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    c.sock.close()


def test_the_server_thread_reads_packets_without_allocating_a_receive_size_object(
    server: GdbServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``socket.recv(n)`` allocates ``n`` bytes before it reads; on the server thread that was
    a 64 KiB allocation per packet and per empty poll, and its holes grew the thread's malloc
    arena over a long session (docs/reference/unicorn.md §12). The server reads into one
    buffer instead, and what it reads is unchanged."""
    sizes: list[int] = []
    recv = socket.socket.recv

    def counting_recv(sock: socket.socket, bufsize: int, *args: int) -> bytes:
        if threading.current_thread().name == "guestdbg-gdb":
            sizes.append(bufsize)
        return recv(sock, bufsize, *args)

    monkeypatch.setattr(socket.socket, "recv", counting_recv)
    c = tcp_client(server)
    c.handshake()
    assert len(c.ask(b"m1000,4")) == 8
    c.send_raw(make_packet(b"M1000,4:11223344") + make_packet(b"m1000,4"))  # two in one read
    assert c.read_packet() == b"OK" and c.read_packet() == b"11223344"
    c.send(b"vCont;c")
    c.send_raw(b"\x03")
    assert c.read_packet().startswith(b"T")
    assert c.ask(b"D") == b"OK"
    assert sizes == []


def test_a_traced_server_keeps_the_connections_last_packets_each_way(target: MemTarget) -> None:
    with GdbServer(target, ("127.0.0.1", 0), trace=3) as srv:
        srv.start()
        c = tcp_client(srv)
        c.handshake()
        assert c.ask(b"Z0,1010,4") == b"OK"
        assert c.ask(b"m1010,4")
        wait_until(lambda: srv.trace is not None and len(srv.trace) == 6, "six entries")
        assert srv.trace is not None
        kept = [(d, data) for _, d, data in srv.trace]
        assert kept[-4:] == [
            ("<", make_packet(b"Z0,1010,4")), (">", b"$OK#9a"), ("<", make_packet(b"m1010,4")),
            kept[-1],
        ]  # fmt: skip
        assert kept[-1][0] == ">" and len(kept) == 6  # the oldest went
        assert f"< {make_packet(b'm1010,4')!r}" in format_trace(srv.trace)
        c.sock.close()


def test_an_untraced_server_keeps_nothing(server: GdbServer) -> None:
    assert server.trace is None
    assert format_trace(server.trace) == "(no packets traced)"


# -- lifecycle -----------------------------------------------------------------------------


def test_detach_then_a_new_gdb_can_attach(server: GdbServer, target: MemTarget) -> None:
    c = tcp_client(server)
    c.handshake()
    assert c.ask(b"Z0,1010,4") == b"OK"
    assert c.ask(b"D") == b"OK"
    assert c.sock.recv(10) == b""  # the server closes after detaching
    wait_until(lambda: target.count.detach == 1, "detach")
    assert target.point_refs() == {} and target.running  # the guest runs on
    c2 = tcp_client(server)
    c2.handshake()
    assert c2.ask(b"?").startswith(b"T02thread:1;")  # the new debugger stopped it
    assert target.count.attach == 2 and target.count.detach == 1
    c2.sock.close()
    wait_until(lambda: target.count.detach == 2, "second detach")


def test_abrupt_disconnect_while_running_detaches_exactly_once(
    server: GdbServer, target: MemTarget
) -> None:
    c = tcp_client(server)
    c.handshake()
    assert c.ask(b"Z1,1004,4") == b"OK"
    c.send(b"vCont;c:2")  # vCPU 1 starts at 0x1100, past the breakpoint: it never stops
    wait_until(lambda: server.stub is not None and server.stub.state.value == "running", "run")
    c.sock.close()
    wait_until(lambda: server.stub is None, "connection teardown")
    assert target.count.detach == 1 and target.count.detach_refused == 0
    assert target.count.interrupt == 1
    assert target.point_refs() == {}
    c2 = tcp_client(server)
    assert c2.handshake()
    c2.sock.close()


def test_ctrl_c_over_the_socket_stops_the_guest(server: GdbServer, target: MemTarget) -> None:
    c = tcp_client(server)
    c.handshake()
    c.send(b"vCont;c")
    wait_until(lambda: target.running, "guest running")
    c.send_raw(b"\x03")
    assert c.read_packet().startswith(b"T02thread:1;")
    assert c.ask(b"qAttached") == b"1"
    c.sock.close()


def test_a_breakpoint_hit_is_reported_over_the_socket(server: GdbServer) -> None:
    c = tcp_client(server)
    c.handshake()
    assert c.ask(b"Z0,1040,4") == b"OK"
    assert c.ask(b"vCont;c").startswith(b"T05thread:1;swbreak:;20:00001040;")
    assert c.ask(b"vCont;s:1").startswith(b"T05thread:1;20:00001044;")
    c.sock.close()


def test_close_detaches_a_connected_debugger_and_ends_the_thread(target: MemTarget) -> None:
    srv = GdbServer(target, ("127.0.0.1", 0))
    thread = srv.start()
    c = tcp_client(srv)
    c.handshake()
    srv.close()
    assert not thread.is_alive()
    assert target.count.detach == 1
    with pytest.raises(OSError):
        socket.create_connection(srv.bound_address, timeout=1)  # type: ignore[arg-type]


def test_a_target_that_cannot_attach_gets_the_connection_closed(target: MemTarget) -> None:
    class Refuses(MemTarget):
        def attach(self) -> StopEvent:
            raise InvalidRequest("the VM is being migrated")

    with GdbServer(Refuses(), ("127.0.0.1", 0)) as srv:
        srv.start()
        c = tcp_client(srv)
        assert c.sock.recv(10) == b""
        c2 = tcp_client(srv)  # and the server still accepts
        assert c2.sock.recv(10) == b""


# -- socket-level fuzz ---------------------------------------------------------------------

FUZZ_PACKETS = [
    b"g", b"c", b"s", b"vCont;c", b"vCont;s:1", b"D", b"k", b"?", b"m1000,40", b"Z0,1010,4",
    b"z0,1010,4", b"Z1,1020,4", b"Z2,2000,4", b"Hg2", b"Hc-1", b"QStartNoAckMode", b"qfThreadInfo",
    b"X1000,2:ab", b"M1000,2:abcd", b"qRcmd,68656c70", b"P20=00001000", b"vCont;c:9",
]  # fmt: skip


def _fuzz_chunk(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.35:
        return make_packet(rng.choice(FUZZ_PACKETS))
    if roll < 0.55:
        body = bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(0, 40)))
        return make_packet(body.replace(b"#", b"").replace(b"$", b""))
    if roll < 0.65:
        return rng.choice([b"\x03", b"+", b"-", b"$g#00", b"$" + b"a" * 5000 + b"#00"])
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


def test_random_bytes_over_sockets_never_break_the_detach_once_lifecycle(
    target: MemTarget,
) -> None:
    target.accesses[0x1100] = (0x2000, "w")
    rng = random.Random(1234)
    rounds = 15
    with GdbServer(target, ("127.0.0.1", 0)) as srv:
        srv.start()
        for r in range(rounds):
            # Drawn before sending, so every round sends the same bytes however early the
            # server hangs up (after a D or k the rest of a round is refused).
            chunks = [_fuzz_chunk(rng) for _ in range(150)]
            sock = socket.create_connection(srv.bound_address)  # type: ignore[arg-type]
            drained = threading.Thread(target=_drain, args=(sock,), daemon=True)
            drained.start()
            try:
                for chunk in chunks:
                    sock.sendall(chunk)
            except OSError:
                pass  # the stub closed the connection after a D or k
            _hang_up(sock, drained)
            wait_until(_detached(target, r + 1), f"detach of round {r}")
        assert target.count.attach == rounds
        assert target.count.detach_refused == 0
        c = tcp_client(srv)
        c.handshake()
        assert c.ask(b"?").startswith(b"T02thread:1;")
        assert len(c.ask(b"g")) == 38 * 8
        c.sock.close()


def test_a_debugger_that_hangs_up_while_its_reader_waits_is_detached(
    server: GdbServer, target: MemTarget
) -> None:
    """The fuzz test's hang-up, with the server already idle in ``recv`` before it comes.

    Regression (issue 13): the fuzz test hung up with ``close()`` alone while its reader
    thread was blocked in ``recv`` on the same socket. On Linux that closes the descriptor but
    not the socket (the blocked call holds it), so no FIN leaves until the server sends
    something; a server that had already answered everything waited for GDB, GDB's reader
    waited for the server, and under load the test gave up on the detach. ``_hang_up``
    shuts the socket down first, as a debugger that exits does."""
    sock = socket.create_connection(server.bound_address)  # type: ignore[arg-type]
    c = SocketClient(sock)
    c.handshake()
    assert c.ask(b"?").startswith(b"T02")  # answered: the server now blocks in recv
    sock.settimeout(None)
    reader = threading.Thread(target=_drain, args=(sock,), daemon=True)
    reader.start()
    wait_until(lambda: server.stub is not None and server.stub.state.value == "idle", "idle")
    _hang_up(sock, reader)
    assert not reader.is_alive()
    wait_until(_detached(target, 1), "detach after the hang-up")
    wait_until(lambda: server.stub is None, "connection teardown")


def _hang_up(sock: socket.socket, reader: threading.Thread) -> None:
    """Disconnect like a debugger that exits. ``shutdown`` sends the FIN even while
    ``reader`` is blocked in ``recv`` on this socket (``close`` alone would not: the blocked
    call keeps the socket open) and wakes ``reader``."""
    with contextlib.suppress(OSError):  # already reset by a server that hung up first
        sock.shutdown(socket.SHUT_RDWR)
    reader.join(10)
    sock.close()


def _detached(target: MemTarget, times: int) -> Callable[[], bool]:
    return lambda: target.count.detach == times


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def test_serve_forever_in_the_callers_thread_returns_on_close(target: MemTarget) -> None:
    srv = GdbServer(target, ("127.0.0.1", 0))
    runner = threading.Thread(target=srv.serve_forever)
    runner.start()
    c = tcp_client(srv)
    c.handshake()
    srv.close()
    runner.join(10)
    assert not runner.is_alive() and target.count.detach == 1
