"""A raw GDB Remote Serial Protocol client: what a differential needs from a reference gdbstub.

Not GDB: no symbol files, no guesses. Framing with acknowledgements (QEMU's system-mode stub
offers no ``QStartNoAckMode``), checksums verified, ``O`` console packets collected for
``qRcmd``, the target description read with its includes, and *pipelining*: packets a stopped
stub answers without running the guest (``g``, ``p``, ``m``, ``Z``/``z``) may be sent in one
write and their replies read in order, which turns k round trips into one. A packet that
resumes the guest may only come last in a pipeline, and the replies before it go
unacknowledged: any byte arriving while QEMU's guest runs, an ``+`` too, is taken as an interrupt
request (``gdb_read_byte``), and QEMU's system-mode stub never waits for an acknowledgement.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from guestdbg.errors import GuestDebugError


class RspError(GuestDebugError):
    """The stub answered with an error, a bad checksum, or closed the connection."""


@dataclass(frozen=True, slots=True)
class TdescRegister:
    name: str
    bitsize: int
    regnum: int
    feature: str


def frame(payload: str) -> bytes:
    data = payload.encode()
    return b"$%s#%02x" % (data, sum(data) & 0xFF)


class RspClient:
    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        self.sock = sock
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def command(self, payload: str) -> str:
        self.sock.sendall(frame(payload))
        return self.reply()

    def pipeline(self, payloads: Sequence[str]) -> list[str]:
        """Send every packet at once, then read one reply per packet, in order."""
        self.sock.sendall(b"".join(frame(p) for p in payloads))
        return [self.reply() for _ in payloads]

    def resume(self, payloads: Sequence[str], timeout: float | None) -> str:
        """Send ``payloads`` at once, the last one resuming the guest (``c``, ``s``); check
        the others' replies and return the stop reply (TimeoutError after ``timeout``)."""
        self.sock.sendall(b"".join(frame(p) for p in payloads))
        for p in payloads[:-1]:
            check(self.reply(ack=False), p)
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.reply()
        finally:
            self.sock.settimeout(old)

    def interrupt(self) -> None:
        """The out-of-band ^C: a running guest stops and the stub sends a stop reply."""
        self.sock.sendall(b"\x03")

    def reply(self, ack: bool = True) -> str:
        """The next packet's payload, acknowledged unless told not to (``+``/``-`` bytes before
        it are skipped)."""
        while True:
            start = self._buf.find(b"$")
            end = self._buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self._buf) >= end + 3:
                body = self._buf[start + 1 : end]
                check = self._buf[end + 1 : end + 3]
                self._buf = self._buf[end + 3 :]
                if int(check, 16) != sum(body) & 0xFF:
                    self.sock.sendall(b"-")
                    raise RspError(f"bad checksum on {body[:40]!r}")
                if ack:
                    self.sock.sendall(b"+")
                return body.decode()
            chunk = self.sock.recv(65536)  # TimeoutError when the stub stays silent
            if not chunk:
                raise RspError("the stub closed the connection")
            self._buf += chunk

    # -- queries ----------------------------------------------------------------------------

    def monitor(self, command: str) -> str:
        """``qRcmd``: the stub's console output until its final ``OK``."""
        self.sock.sendall(frame("qRcmd," + command.encode().hex()))
        out = []
        while True:
            r = self.reply()
            if r.startswith("O") and r != "OK":
                out.append(bytes.fromhex(r[1:]).decode(errors="replace"))
                continue
            if r.startswith("E"):
                raise RspError(f"monitor {command!r}: {r}")
            return "".join(out)

    def xfer(self, obj: str, annex: str) -> str:
        """A whole ``qXfer:OBJ:read:ANNEX`` document."""
        out, offset = [], 0
        while True:
            r = self.command(f"qXfer:{obj}:read:{annex}:{offset:x},fff")
            if not r or r[0] not in "ml":
                raise RspError(f"qXfer {obj} {annex}: {r!r}")
            out.append(r[1:])
            offset += len(r) - 1
            if r[0] == "l":
                return "".join(out)

    def target_registers(self) -> list[TdescRegister]:
        """The target description's registers, numbered as GDB numbers them: an explicit
        ``regnum`` or one more than the register before (across features and includes)."""
        regs: list[TdescRegister] = []
        self._read_tdesc("target.xml", regs)
        return regs

    def _read_tdesc(self, annex: str, regs: list[TdescRegister]) -> None:
        doc = self.xfer("features", annex)
        feature = ""
        pattern = r'<feature name="([^"]+)"|<xi:include href="([^"]+)"|<reg ([^>]*)/?>'
        for m in re.finditer(pattern, doc):
            if m[1]:
                feature = m[1]
            elif m[2]:
                self._read_tdesc(m[2], regs)
            else:
                attrs = dict(re.findall(r'(\w+)="([^"]*)"', m[3]))
                regnum = int(attrs["regnum"]) if "regnum" in attrs else (
                    regs[-1].regnum + 1 if regs else 0
                )  # fmt: skip
                regs.append(TdescRegister(attrs["name"], int(attrs["bitsize"]), regnum, feature))


def check(reply: str, what: str) -> str:
    if reply.startswith("E") and len(reply) == 3:
        raise RspError(f"{what}: {reply}")
    return reply
