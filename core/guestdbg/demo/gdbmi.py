"""Driving a real GDB through its machine interface (MI), one command at a time.

The demo, the end-to-end tests and the benchmark all need the same thing: type a command into a
real ``gdb-multiarch``, wait until GDB has finished with it (and, for a command that resumes the
target, until the target stopped again), and keep what GDB printed. MI makes the end of a
command explicit (a result record carrying the command's token; ``*stopped`` after
``^running``), so nothing here waits a fixed time. Lines are parsed with ``pygdbmi``.

CLI commands go through ``-interpreter-exec console`` so GDB answers exactly as it would at its
prompt (the transcript shows what a user would see); the ``*stopped`` record gives the stop's
reason, thread and PC as structured data for checks.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pygdbmi.gdbmiparser import parse_response

from ..errors import GuestDebugError

GDB = "gdb-multiarch"
DEFAULT_TIMEOUT = 30.0
TRANSCRIPT_LINES = 64


class GdbDriverError(GuestDebugError):
    """GDB is missing, died, or did not finish a command in time."""


@dataclass
class GdbReply:
    """What GDB did with one command."""

    command: str
    result: str = ""
    """The result class: ``done``, ``error``, ``connected``, or ``running`` (then ``stopped``)."""
    console: str = ""
    """What GDB printed on its console (``~`` records)."""
    target: str = ""
    """What the target printed through GDB (``@`` records: ``monitor`` output)."""
    log: str = ""
    """GDB's own messages (``&`` records: warnings, errors, ``set debug remote`` traces)."""
    error: str | None = None
    stopped: dict[str, Any] | None = None
    """The ``*stopped`` record's fields when the command resumed the target and it stopped."""
    notes: list[dict[str, Any]] = field(default_factory=list)
    """Other async records seen meanwhile (``=breakpoint-created``...)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """Everything a user at the prompt would have read, in GDB's order of streams."""
        out = self.console + self.target
        if self.error is not None:
            out += self.log if self.log else self.error + "\n"
        return out

    @property
    def stop_pc(self) -> int | None:
        frame = (self.stopped or {}).get("frame") or {}
        addr = frame.get("addr")
        return int(addr, 16) if isinstance(addr, str) else None

    @property
    def stop_thread(self) -> int | None:
        tid = (self.stopped or {}).get("thread-id")
        return int(tid) if isinstance(tid, str) and tid.isdigit() else None

    @property
    def stop_reason(self) -> str | None:
        reason = (self.stopped or {}).get("reason")
        return reason if isinstance(reason, str) else None


def _mi_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GdbMi:
    """One ``gdb-multiarch --interpreter=mi3`` process.

    ``run("break work")`` types a CLI command and returns a :class:`GdbReply` once GDB is done
    with it; a command that resumes the target returns when the target stopped (or GDB gave
    up, e.g. a breakpoint it could not insert). ``kill()`` ends GDB abruptly (SIGKILL), the way
    a crashing debugger would.
    """

    def __init__(
        self,
        elf: str | Path | None = None,
        *,
        gdb: str = GDB,
        timeout: float = DEFAULT_TIMEOUT,
        extra_args: Sequence[str] = (),
        transcript: int = TRANSCRIPT_LINES,
    ) -> None:
        """``transcript``: how many of the last lines exchanged with GDB :attr:`transcript`
        keeps (commands sent as ``> ...``, what GDB printed as it came)."""
        exe = shutil.which(gdb)
        if exe is None:
            raise GdbDriverError(
                f"{gdb} not found: install gdb-multiarch (tools/bootstrap.sh does)"
            )
        args = [exe, "--interpreter=mi3", "-nx", "-q", *extra_args]
        if elf is not None:
            args.append(str(elf))
        self.timeout = timeout
        self._records: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._token = 0
        self.transcript: deque[tuple[float, str]] = deque(maxlen=max(transcript, 1))
        """``(time.monotonic(), line)``: the last lines sent (``> ``) and read, for
        explaining a failure after the fact."""
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="gdb-mi-reader", daemon=True)
        self._reader.start()
        self.run("set confirm off")
        self.run("set pagination off")
        self.run("set width 0")

    # -- records ---------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                if not line or line.startswith("(gdb)"):
                    continue
                self.transcript.append((time.monotonic(), line))
                try:
                    record = parse_response(line)
                except Exception:  # a line outside MI (a crash message): keep it as log
                    record = {"type": "log", "payload": line + "\n", "token": None}
                self._records.put(record)
        except (OSError, ValueError):
            pass  # the pipe closed under us: GDB is gone
        finally:
            self._records.put(None)

    def _next(self, deadline: float, command: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        try:
            rec = self._records.get(timeout=max(remaining, 0.001))
        except queue.Empty:
            raise GdbDriverError(f"GDB did not finish {command!r} in time") from None
        if rec is None:
            self._records.put(None)
            raise GdbDriverError(f"GDB exited while running {command!r}")
        return rec

    # -- commands --------------------------------------------------------------------------

    def mi(self, command: str, timeout: float | None = None) -> GdbReply:
        """Send one MI command (without token); wait for its result, and for the stop if it
        resumed the target."""
        if self.proc.poll() is not None or self.proc.stdin is None:
            raise GdbDriverError(f"GDB is not running (cannot send {command!r})")
        self._token += 1
        token = self._token
        reply = GdbReply(command)
        self.transcript.append((time.monotonic(), f"> {token}{command}"))
        try:
            self.proc.stdin.write(f"{token}{command}\n")
            self.proc.stdin.flush()
        except OSError as e:
            raise GdbDriverError(f"GDB's input is closed: {e}") from None
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        running = False
        while True:
            rec = self._next(deadline, command)
            kind = rec.get("type")
            payload = rec.get("payload")
            if kind == "console":
                reply.console += str(payload or "")
            elif kind == "target":
                reply.target += str(payload or "")
            elif kind == "log":
                reply.log += str(payload or "")
            elif kind == "result" and rec.get("token") == token:
                reply.result = str(rec.get("message"))
                if reply.result == "error":
                    msg = payload.get("msg") if isinstance(payload, dict) else None
                    reply.error = str(msg) if msg is not None else "error"
                    return reply
                if reply.result != "running":
                    return reply
                running = True
            elif kind == "notify" and rec.get("message") == "stopped":
                reply.stopped = payload if isinstance(payload, dict) else {}
                if running:
                    return reply
            elif kind == "notify":
                reply.notes.append(rec)

    def run(self, cli: str, timeout: float | None = None) -> GdbReply:
        """Type ``cli`` at GDB's prompt."""
        reply = self.mi(f"-interpreter-exec console {_mi_quote(cli)}", timeout)
        reply.command = cli
        return reply

    def send(self, cli: str) -> None:
        """Type ``cli`` and return at once (e.g. a ``continue`` to be interrupted or killed);
        its records stay queued for :meth:`wait_stopped`."""
        if self.proc.poll() is not None or self.proc.stdin is None:
            raise GdbDriverError(f"GDB is not running (cannot send {cli!r})")
        self._token += 1
        line = f"{self._token}-interpreter-exec console {_mi_quote(cli)}"
        self.transcript.append((time.monotonic(), "> " + line))
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def check(self, cli: str, timeout: float | None = None) -> GdbReply:
        """``run``, raising GdbDriverError when GDB reports an error."""
        reply = self.run(cli, timeout)
        if not reply.ok:
            raise GdbDriverError(f"GDB refused {cli!r}: {reply.error}")
        return reply

    def wait_stopped(self, timeout: float | None = None) -> dict[str, Any]:
        """The next ``*stopped`` record (after :meth:`interrupt`)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            rec = self._next(deadline, "<wait for a stop>")
            if rec.get("type") == "notify" and rec.get("message") == "stopped":
                payload = rec.get("payload")
                return payload if isinstance(payload, dict) else {}

    # -- process ---------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl-C: GDB sends the stub a 0x03."""
        self.transcript.append((time.monotonic(), "> SIGINT"))
        self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL: the connection drops with no ``D``, whatever state the target is in."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_pipes()

    def close(self) -> None:
        """Quit GDB (it detaches from a remote target it is still connected to)."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("-gdb-exit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()

    def __enter__(self) -> GdbMi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
