"""A minimal GDB Remote Serial Protocol client for stepping QEMU's gdbstub (test helper).

Only what the differential test needs: ``s`` then ``g`` per step, acknowledged framing, and
QEMU's legacy PowerPC ``g`` layout (what it sends before the client has read ``target.xml``,
peers §1.5): 32 GPRs of 4 bytes, 32 FPRs of 8, then PC, MSR, CR, LR, CTR, XER, FPSCR.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class Rsp:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def command(self, payload: str) -> str:
        data = payload.encode()
        self.sock.sendall(b"$%s#%02x" % (data, sum(data) & 0xFF))
        return self._packet()

    def _packet(self) -> str:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                body = self.buf[start + 1 : end]
                self.buf = self.buf[end + 3 :]
                self.sock.sendall(b"+")
                return body.decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QEMU closed the gdbstub connection")
            self.buf += chunk

    def step(self) -> str:
        return self.command("s")

    def pc_and_gprs(self) -> tuple[int, list[int]]:
        g = self.command("g")
        gprs = [int(g[8 * n : 8 * n + 8], 16) for n in range(32)]
        pc_at = 32 * 8 + 32 * 16
        return int(g[pc_at : pc_at + 8], 16), gprs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def qemu_ppce500(elf: Path) -> Iterator[Rsp]:
    """QEMU ``ppce500``/e500mc halted at the ELF's entry, with its gdbstub connected."""
    port = free_port()
    cmd = ["qemu-system-ppc", "-M", "ppce500", "-cpu", "e500mc", "-nic", "none", "-S",
           "-gdb", f"tcp:127.0.0.1:{port}", "-nographic", "-display", "none",
           "-serial", "null", "-monitor", "none", "-kernel", str(elf)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sock = None
    try:
        deadline = time.monotonic() + 10
        while sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"QEMU did not open its gdbstub: {err}") from None
                time.sleep(0.02)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield Rsp(sock)
    finally:
        if sock is not None:
            sock.close()
        proc.kill()
        proc.wait()
