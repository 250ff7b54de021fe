"""What both VMM examples do around the GDB stub: run gdb-multiarch in batch against it, or wait
for a person's GDB to come and go."""

from __future__ import annotations

import shlex
import subprocess
import threading

from vmm_debug_loop import ExampleFailed

GDB_TIMEOUT = 60.0


def gdb_command(where: str, *setup: str, commands: tuple[str, ...] = ()) -> list[str]:
    """``gdb-multiarch`` with ``setup`` commands (endianness, the ELF), connected to ``where``
    (HOST:PORT or a Unix socket path), then ``commands``."""
    argv = ["gdb-multiarch", "-nx"]
    for command in (*setup, f"target remote {where}", *commands):
        argv += ["-ex", command]
    return argv


def run_gdb_batch(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a GDB command line in batch mode; its output is printed as ``gdb|`` lines."""
    argv = [argv[0], "-batch", *argv[1:]]
    print("gdb: " + shlex.join(argv))
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=GDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ExampleFailed(f"gdb-multiarch did not finish within {GDB_TIMEOUT:.0f} s") from None
    for line in out.stdout.splitlines():
        if line.strip():
            print(f"  gdb| {line}")
    return out


def gdb_failure(out: subprocess.CompletedProcess[str], what: str) -> ExampleFailed:
    why = out.stderr.strip().splitlines()[-1:] or ["unexpected output"]
    return ExampleFailed(f"gdb-multiarch: {why[0]} ({what})")


def wait_for_detach(detached: threading.Event) -> None:
    """Until the GDB that connects has gone again (detach, quit, lost connection: the server's
    ``on_detach`` sets ``detached``) or Ctrl-C."""
    try:
        detached.wait()
    except KeyboardInterrupt:
        print("interrupted")
