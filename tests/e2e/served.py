"""A guest on the emulated e500mc host, under ``Session`` and an in-process ``GdbServer``, with
the host's view of guest memory: what the real-GDB end-to-end tests stand on.

Guest memory is read the way a VMM reads it (``vm.read_phys`` at addresses translated while
the guest was halted, before any debugger), so a check of "byte-identical after detach"
compares against the code exactly as the loader put it.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from guestdbg.demo.elf_info import code_ranges, symbols
from guestdbg.demo.gdbmi import GdbMi, GdbReply
from guestdbg.demo.script import HostView
from guestdbg.gdb.server import GdbServer
from guestdbg.plugins import default_registry
from guestdbg.session import Session
from guestdbg_booke.guests import build
from guestdbg_booke.guests.build import PACKAGE_DIR

ROOT = Path(__file__).resolve().parents[2]
GUESTS = Path(__file__).resolve().parent / "guests"
SHARED_GUESTS = ROOT / "tests" / "guests" / "ppc"
BUILD = ROOT / "tests" / "guests" / "build" / "e2e"
WAIT = 10.0
NEEDS_GDB = [
    pytest.mark.gdb,
    pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch"),
]
"""``pytestmark`` of every module here."""
PC_REGNUM = 0x20
"""``pc`` in the e500mc ``g`` layout (r0-r31, then pc): the key of the PC in a stop reply."""


@functools.cache
def elf(name: str, debug_lines: bool = False) -> Path:
    """``demo`` is the shipped demo guest; other names are ``tests/e2e/guests/<name>.S``, else
    ``tests/guests/ppc/<name>.S``;
    ``debug_lines``: assembled with ``-g`` (GDB steps its source lines)."""
    source = PACKAGE_DIR / "demo.S" if name == "demo" else GUESTS / f"{name}.S"
    if not source.exists():
        source = SHARED_GUESTS / f"{name}.S"  # a guest the session tests run too
    return build(source, BUILD, debug_lines=debug_lines)


class Served:
    """``GdbServer(Session(vm, "e500mc"), ("127.0.0.1", 0))`` over one guest ELF."""

    def __init__(self, name: str, smp: int = 1, debug_lines: bool = False) -> None:
        self.elf = elf(name, debug_lines)
        self.sym = symbols(self.elf)
        self.vm = default_registry().emulated_host("e500mc").create_vm(str(self.elf), smp=smp)
        self.view = HostView(self.vm, "big")
        self.view.snapshot_code(code_ranges(self.elf))
        for addr in self.sym.values():
            if 0x100000 <= addr < 0xE0000000:  # code and data; not .set constants
                self.view.map(addr, 4)
        self.session = Session(self.vm, "e500mc")
        self.server = GdbServer(self.session, ("127.0.0.1", 0))
        self.server.start()
        bound = self.server.bound_address
        assert isinstance(bound, tuple)
        self.port = bound[1]

    def gdb(self, *setup: str) -> GdbMi:
        """A new gdb-multiarch with the ELF, connected; ``setup`` runs before connecting."""
        g = GdbMi(self.elf, timeout=WAIT * 3)
        try:
            g.check("set endian big")
            for command in setup:
                g.check(command)
            self.attached = g.check(f"target remote 127.0.0.1:{self.port}")
        except BaseException:
            g.kill()
            raise
        return g

    def word(self, name: str, index: int = 0) -> int:
        """A 4-byte guest variable (or element ``index`` of an array of them), host view."""
        return self.view.word(self.sym[name] + 4 * index)

    def code_changes(self) -> list[int]:
        return self.view.code_changes()

    def runs_on(self, name: str, index: int = 0) -> tuple[int, int]:
        """Two readings of a guest counter, the second once it moved (or after WAIT)."""
        first = now = self.word(name, index)
        deadline = time.monotonic() + WAIT
        while now == first and time.monotonic() < deadline:
            time.sleep(0.005)
            now = self.word(name, index)
        return first, now

    def wait_detached(self) -> None:
        """Until the server has finished with the last connection (detach done)."""
        deadline = time.monotonic() + WAIT
        while self.server.stub is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.server.stub is None, "the server still serves the old connection"

    def close(self) -> None:
        self.server.close()
        self.session.close()


@contextmanager
def served(name: str, smp: int = 1, debug_lines: bool = False) -> Iterator[Served]:
    s = Served(name, smp, debug_lines)
    try:
        yield s
    finally:
        s.close()


def stop_replies(reply: GdbReply) -> list[dict[str, str]]:
    """The stop replies in a command's ``set debug remote 1`` log, each as its fields (``T05``
    dropped; ``"20"`` is the PC): what the stub told GDB, before GDB did anything with it."""
    out = []
    for line in reply.log.splitlines():
        _, found, packet = line.partition("Packet received: T")
        if not found:
            continue
        fields = dict(f.split(":", 1) for f in packet[2:].split(";") if ":" in f)
        fields["signal"] = packet[:2]
        out.append(fields)
    return out


def reported_pc(fields: dict[str, str]) -> int:
    return int(fields[f"{PC_REGNUM:02x}"], 16)


def traced(g: GdbMi, command: str) -> tuple[GdbReply, list[dict[str, str]]]:
    """Run ``command`` with the remote protocol traced; the reply and the stop replies."""
    g.check("set debug remote 1")
    try:
        r = g.run(command)
    finally:
        g.check("set debug remote 0")
    return r, stop_replies(r)
