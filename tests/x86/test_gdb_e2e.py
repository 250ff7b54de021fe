"""Real gdb-multiarch against the GDB stub serving a session on the emulated x86-64 host: a
software breakpoint, stepi, info registers, a hardware breakpoint reached past the guest's own
int3 (which the session hands back to the guest), detach - in one batch run."""

from __future__ import annotations

import pathlib
import re
import subprocess
from collections.abc import Callable

import pytest

from guestdbg.gdb.server import GdbServer
from guestdbg.session.session import Session

from . import machines

pytestmark = pytest.mark.gdb


def gdb_batch(m: machines.Machine, elf: pathlib.Path, commands: list[str]) -> str:
    """``commands`` run by gdb-multiarch against a Session over ``m`` (connected first)."""
    s = Session(m.vm, "x86")
    srv = GdbServer(s, ("127.0.0.1", 0))
    srv.start()
    try:
        host, port = srv.bound_address
        commands = ["set confirm off", f"file {elf}", f"target remote {host}:{port}", *commands]
        out = subprocess.run(
            ["gdb-multiarch", "-nx", "-batch", *(a for c in commands for a in ("-ex", c))],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        srv.close()
        s.close()
    assert out.returncode == 0, out.stderr
    return out.stdout


def rips(text: str) -> list[int]:
    return [int(v, 16) for v in re.findall(r"^rip\s+(0x[0-9a-f]+)", text, re.M)]


def test_gdb_breaks_steps_and_reads_registers_on_the_emulated_host(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    elf = x86_guests("reinject")
    m = machines.emulated(elf)
    m.start_at("watch_start")
    text = gdb_batch(
        m,
        elf,
        [
            "break *watch_after_load",
            "continue",
            "info registers rip rax eflags cs",
            "stepi",
            "info registers rip",
            "hbreak *bp_done",
            "set $rip = bp_start",
            "continue",
            "info registers rip",
            "detach",
        ],
    )
    assert rips(text) == [m.sym("watch_after_load"), m.sym("watch_done"), m.sym("bp_done")], text
    assert re.search(r"^rax\s+0x1234\b", text, re.M), text
    assert re.search(r"^cs\s+0x10\b", text, re.M), text
    assert "Breakpoint 1, " in text and "detached" in text, text
    assert m.u64("bp_count") == 1  # the guest's own int3 on the way went to its handler


def test_stepi_from_a_breakpoint_on_the_guests_int3_enters_its_handler(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """GDB takes an ``int3`` under a breakpoint for a permanent breakpoint and skips it; the
    stub undoes the skip (guestdbg.gdb.program_breakpoints), so the guest's #BP happens once."""
    elf = x86_guests("reinject")
    m = machines.emulated(elf)
    m.start_at("bp_start")
    text = gdb_batch(
        m,
        elf,
        [
            "break *guest_int3",
            "continue",
            "stepi",
            "info registers rip",
            "delete",
            "hbreak *bp_done",
            "continue",
            "info registers rip",
            "detach",
        ],
    )
    stepped, done = rips(text)
    assert m.sym("bp_handler") <= stepped < m.sym("idt"), text
    assert done == m.sym("bp_done"), text
    assert m.u64("bp_count") == 1
