"""The real gdb-multiarch against the stub and the in-process test target.

GDB cannot learn the byte order from a target description (the XML has no endianness), and
gdb-multiarch's default is the host's, so the session says ``set endian big`` as a user of a
PowerPC target without an ELF loaded must. The architecture comes from the description:
gdb-multiarch 13.1 refuses ``set architecture powerpc:e500mc`` ("not recognized", apparently
because it is also a prefix of ``powerpc:e500mc64``) but takes it from ``<architecture>``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from memtarget import MemTarget

from guestdbg.gdb.server import GdbServer

pytestmark = [
    pytest.mark.gdb,
    pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch"),
]


def gdb(port: int, *commands: str) -> str:
    args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set endian big"]
    args += ["-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


@pytest.fixture
def served() -> Iterator[tuple[MemTarget, int]]:
    target = MemTarget(vcpus=2)
    target.accesses[0x1030] = (0x1800, "r")
    with GdbServer(target, ("127.0.0.1", 0)) as srv:
        srv.start()
        assert isinstance(srv.bound_address, tuple)
        yield target, srv.bound_address[1]


def test_gdb_session_registers_memory_breakpoints_step_threads_detach_reconnect(
    served: tuple[MemTarget, int],
) -> None:
    target, port = served
    out = gdb(
        port,
        "show architecture",
        "info registers pc sp msr",
        "x/4x 0x1000",
        "set {int}0x1100 = 0x12345678",
        "x/1x 0x1100",
        "break *0x1010",
        "continue",
        "stepi",
        "hbreak *0x1020",
        "continue",
        "rwatch *(int *)0x1800",
        "continue",
        "info threads",
        "monitor help",
        "monitor shell",
        "detach",
    )
    assert 'currently "powerpc:e500mc"' in out  # from the target description
    assert re.search(r"pc\s+0x1000\s", out), out
    assert re.search(r"msr\s+0x29000\s", out), out
    assert "0x1000:\t0x60000000\t0x60000000\t0x60000000\t0x60000000" in out
    assert "0x1100:\t0x12345678" in out
    assert bytes(target.memory[0x100:0x104]) == bytes.fromhex("12345678")
    assert "Thread 1 hit Breakpoint 1, 0x00001010 in ?? ()" in out
    assert "0x00001014 in ?? ()" in out  # stepi moved one instruction, same thread
    assert "Thread 1 hit Breakpoint 2, 0x00001020 in ?? ()" in out
    assert "Hardware read watchpoint 3: *(int *)0x1800" in out
    assert re.search(r"2\s+Thread 2 \(vcpu1 \(memtarget\)\)", out), out
    assert "commands: help, points" in out  # monitor output, through O packets
    assert "unknown monitor command 'shell'" in out
    assert "[Inferior 1 (Remote target) detached]" in out
    assert target.count.detach == 1 and target.point_refs() == {}

    again = gdb(port, "info registers pc", "detach")
    assert re.search(r"pc\s+0x", again) and "detached" in again, again
    assert target.count.attach == 2 and target.count.detach == 2
