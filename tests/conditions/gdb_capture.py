"""Breakpoint conditions as the real gdb-multiarch compiles them, taken off the wire.

The stub does not announce ``ConditionalBreakpoints+`` yet, so GDB would keep conditions to
itself. :class:`ConditionTap` sits between GDB and a real :class:`GdbServer`: it adds the
feature to the stub's ``qSupported`` reply, so GDB sends each condition's bytecode with its
``Z0`` packet (``;X<len>,<hex>``), keeps that bytecode, and forwards the ``Z0`` without it,
so the stub under it inserts a plain breakpoint and the session goes on as usual. Only the
framing is touched; the bytecode is GDB's own.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
from collections.abc import Callable

FEATURE = b";ConditionalBreakpoints+"
COND = re.compile(rb";X([0-9a-fA-F]+),([0-9a-fA-F]*)")


def _frame(body: bytes) -> bytes:
    return b"$" + body + b"#%02x" % (sum(body) & 0xFF)


class _Framer:
    """Cuts a byte stream into acks and ``$...#cs`` frames, each passed through ``edit``."""

    def __init__(self, edit: Callable[[bytes], bytes]) -> None:
        self.buf = b""
        self.edit = edit

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = b""
        while self.buf:
            if self.buf[0:1] != b"$":
                cut = self.buf.find(b"$")
                cut = len(self.buf) if cut < 0 else cut
                out += self.buf[:cut]
                self.buf = self.buf[cut:]
                continue
            end = self.buf.find(b"#")
            if end < 0 or end + 3 > len(self.buf):
                break
            body = self.buf[1:end]
            self.buf = self.buf[end + 3 :]
            out += _frame(self.edit(body))
        return out


class ConditionTap:
    """A TCP relay between GDB (which connects to :attr:`port`) and the stub at ``upstream``.

    :attr:`conditions` collects the bytecode of every condition GDB sends, in order, with the
    address of its breakpoint."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.conditions: list[tuple[int, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _from_gdb(self, body: bytes) -> bytes:
        if body[:3] in (b"Z0,", b"Z1,"):
            head = body.split(b";", 1)[0]
            addr = int(head.split(b",")[1], 16)
            for m in COND.finditer(body):
                code = bytes.fromhex(m.group(2).decode())
                assert len(code) == int(m.group(1), 16), body
                self.conditions.append((addr, code))
            return head
        return body

    @staticmethod
    def _from_stub(body: bytes) -> bytes:
        return body + FEATURE if b"swbreak+" in body else body

    def _pump(self, src: socket.socket, dst: socket.socket, framer: _Framer) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(framer.feed(data))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _serve(self) -> None:
        gdb, _ = self._listener.accept()
        stub = socket.create_connection(self.upstream)
        back = threading.Thread(
            target=self._pump, args=(stub, gdb, _Framer(self._from_stub)), daemon=True
        )
        back.start()
        self._pump(gdb, stub, _Framer(self._from_gdb))
        back.join(10)
        gdb.close()
        stub.close()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(10)


def run_gdb(port: int, *commands: str) -> str:
    """gdb-multiarch, batch, on a big-endian PowerPC target at ``port`` (the architecture
    comes from the stub's target description)."""
    args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set endian big"]
    args += ["-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr
