"""A minimal GDB-side view of the wire for the tests, written independently of the stub's codec.

It decodes what the stub sends the way GDB's remote.c read_frame does (checksum over the bytes
as sent, ``c*N`` = N - 29 extra copies of c), so a test that reads replies through it would
catch a framing or run-length bug in the stub rather than share it.
"""

from __future__ import annotations

import socket

from guestdbg.gdb.stub import GdbStub


def make_packet(body: bytes) -> bytes:
    total = 0
    for b in body:
        total += b
    return b"$" + body + b"#" + f"{total % 256:02x}".encode()


def expand_runs(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i] == ord("*"):
            assert out, "a run marker cannot start a packet"
            out.extend(out[-1:] * (data[i + 1] - 29))
            i += 2
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def split_output(out: bytes) -> tuple[list[bytes], list[bytes]]:
    """(acks and nacks seen, packet bodies after run-length expansion) in the stub's output."""
    signals: list[bytes] = []
    bodies: list[bytes] = []
    i = 0
    while i < len(out):
        c = out[i : i + 1]
        if c in (b"+", b"-"):
            signals.append(c)
            i += 1
            continue
        assert c == b"$", f"junk in stub output at {i}: {out[i : i + 20]!r}"
        end = out.index(b"#", i)
        raw = out[i + 1 : end]
        assert int(out[end + 1 : end + 3], 16) == sum(raw) % 256, "bad checksum from the stub"
        bodies.append(expand_runs(raw))
        i = end + 3
    return signals, bodies


def ask(stub: GdbStub, body: bytes) -> list[bytes]:
    """Send one packet to a stub (no socket); the reply packets (acks dropped)."""
    return split_output(stub.receive(make_packet(body)))[1]


def ask1(stub: GdbStub, body: bytes) -> bytes:
    replies = ask(stub, body)
    assert len(replies) == 1, f"{body!r} -> {replies!r}"
    return replies[0]


class SocketClient:
    """Talks RSP over a real socket, in no-ack mode after :meth:`handshake`."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        sock.settimeout(timeout)
        self._buf = b""
        self.acks = True

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, body: bytes) -> None:
        self.sock.sendall(make_packet(body))

    def read_packet(self) -> bytes:
        """The next packet body (acks skipped); raises on timeout or a closed connection."""
        while True:
            while self._buf[:1] in (b"+", b"-"):
                self._buf = self._buf[1:]
            if self._buf.startswith(b"$") and b"#" in self._buf:
                end = self._buf.index(b"#")
                if len(self._buf) >= end + 3:
                    raw = self._buf[1:end]
                    assert int(self._buf[end + 1 : end + 3], 16) == sum(raw) % 256
                    self._buf = self._buf[end + 3 :]
                    if self.acks:
                        self.sock.sendall(b"+")
                    return expand_runs(raw)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("stub closed the connection")
            self._buf += data

    def ask(self, body: bytes) -> bytes:
        self.send(body)
        return self.read_packet()

    def handshake(self) -> bytes:
        supported = self.ask(b"qSupported:swbreak+;hwbreak+;vContSupported+")
        assert self.ask(b"QStartNoAckMode") == b"OK"
        self.acks = False
        return supported
