"""Breakpoint hits per second through real GDB and through a raw RSP client: ``guestdbg serve``
on the emulated e500mc host against QEMU's gdbstub (``-M ppce500 -cpu e500mc``), same ELF.

The guest (``bench/guests/bp_loop.S``) loops forever over one instruction, ``hit``, that stores
the iteration number; a software breakpoint sits on it. Per target and client:

* raw RSP: the same ``z0;s;Z0;c`` cycle per hit on both (QEMU re-reports a breakpoint on ``c``
  without executing it, so a client must step over it). guestdbg also runs with a plain ``c`` per
  hit, because its session steps over a breakpoint under the PC on its own (extra information).
  The client uses no-ack mode where the stub offers it (guestdbg does, QEMU does not).
* GDB: ``break *hit``, ``ignore 1 N``, ``continue``: GDB stops at every hit and resumes on its
  own (its step-over dance), timed inside GDB with its Python.
* the loopback floor: one RSP packet round trip between two Python processes (a client and a
  server that answers at once, TCP_NODELAY, no-ack), measured in the same run
  (docs/reference/peers.md §7).

Every rate is checked against the guest's own ``count`` (a hit the stub invented or lost fails
the run). Targets and clients alternate round by round (ABBA) so machine load hits both alike;
the median round counts. Both servers stay up for the whole run; each measurement is a fresh
connection.

Then where a guestdbg hit's time goes: the same packets fed straight into the stub in this
process (no socket), once plain, once with the stub, session, arch ops and emulated host's
calls wrapped in timers (exclusive time per category and thread, wrapper cost calibrated and
taken out), and once against a target that answers at once (the stub's own cost). The
loopback share is the round trips times the floor; what remains of the TCP time is the client
(GDB's own work) and socket I/O.

Range stepping: GDB's ``next`` over source lines of 60 instructions each (the loop's last line
adds its branch back) from ``bench/guests/range_lines.S``, assembled with ``as -g``: lines per
second, timed inside GDB with its Python, on both targets in alternating rounds on their own
pair of servers. guestdbg offers ``vCont;r`` and range-steps a whole line with one packet and
one stop reply; QEMU does not, so GDB steps its lines with one ``vCont;s`` and one stop per
instruction (docs/reference/peers.md §9). The guest's r3 counts the instructions run (a line
that was not stepped whole fails the run).

And breakpoint conditions: ``break *X if <cond>`` with a condition true once in 1,000 hits,
one on a register and one on a memory word (``CONDITIONS``): evaluations per second, at two
places of the loop. guestdbg evaluates the condition in the stub, on the vCPU's thread, and GDB
sees one stop per 1,000 hits; QEMU offers no target-side conditions, so GDB stops, reads and
resumes at every hit. How guestdbg gets past a false hit depends on the instruction under the
breakpoint: at ``loop`` (``addi``, registers only) the BookE plugin carries the instruction out
itself (``execute_in_place``: one KVM_GET_REGS and one KVM_SET_REGS, the trap word stays); at
``hit`` (``stw``, a store whose permission userspace cannot check on BookE) the session steps
past it with the trap word taken out (two KVM_SET_GUEST_DEBUG, a one-instruction KVM_RUN, two
trap-word writes).

Last line: ``gdb_ratio=<float> rsp_ratio=<float> cond_ratio=<float> range_ratio=<float>
cond_store_ratio=<float>`` (guestdbg / QEMU; ``cond_ratio`` is the lower of the two
conditions' ratios at ``loop``, ``cond_store_ratio`` the same at ``hit``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guestdbg.demo.elf_info import symbols  # noqa: E402
from guestdbg_booke.guests import build  # noqa: E402

GUEST = ROOT / "bench" / "guests" / "bp_loop.S"
RANGE_GUEST = ROOT / "bench" / "guests" / "range_lines.S"
LINE_INSNS = 60
"""Instructions per source line of the range guest (its ``LINE_INSNS``)."""
BUILD = ROOT / "bench" / "guests" / "build"
GDB = "gdb-multiarch"
QEMU = "qemu-system-ppc"
CONNECT_TIMEOUT = 20.0
IO_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the two servers ------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]


def start_guestdbg(elf: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "guestdbg", "serve", "--elf", str(elf),
           "--gdb", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return Server("guestdbg", port, proc)


def start_qemu(elf: Path) -> Server:
    port = free_port()
    cmd = [QEMU, "-M", "ppce500", "-cpu", "e500mc", "-nic", "none", "-S",
           "-gdb", f"tcp:127.0.0.1:{port}", "-nographic", "-display", "none",
           "-serial", "null", "-monitor", "none", "-kernel", str(elf)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return Server("qemu", port, proc)


def connect(server: Server) -> socket.socket:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        except OSError:
            if server.proc.poll() is not None:
                out = server.proc.stdout.read().decode() if server.proc.stdout else ""
                raise SystemExit(f"{server.name} exited before listening: {out.strip()}") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"{server.name} did not listen on {server.port}") from None
            time.sleep(0.05)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@contextlib.contextmanager
def servers(elf: Path) -> Iterator[list[Server]]:
    started = [start_guestdbg(elf), start_qemu(elf)]
    try:
        for s in started:
            connect(s).close()  # wait until it listens (a connect-and-go is a clean detach)
        yield started
    finally:
        for s in started:
            s.proc.terminate()
            try:
                s.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


# -- a raw RSP client -----------------------------------------------------------------------


class Rsp:
    """Just enough RSP: framed packets, acks until no-ack mode, one reply per packet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.acks = True
        self.packets = 0

    def send(self, body: bytes) -> None:
        self.sock.sendall(b"$%b#%02x" % (body, sum(body) & 0xFF))
        self.packets += 1

    def reply(self) -> bytes:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if end >= 0 and len(self.buf) >= end + 3:
                body = self.buf[start + 1 : end]
                self.buf = self.buf[end + 3 :]
                if self.acks:
                    self.sock.sendall(b"+")
                if body.startswith(b"O") and body != b"OK":
                    continue  # console output
                return body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the stub closed the connection")
            self.buf += chunk

    def ask(self, body: bytes) -> bytes:
        self.send(body)
        return self.reply()

    def handshake(self) -> None:
        # QEMU stops a running guest when a client connects and sends that stop (T02) unasked.
        self.send(b"qSupported:swbreak+;hwbreak+;vContSupported+")
        features = self.reply()
        while features[:1] in (b"T", b"S"):
            features = self.reply()
        if b"QStartNoAckMode+" in features and self.ask(b"QStartNoAckMode") == b"OK":
            self.acks = False
        self.ask(b"?")

    def read_word(self, addr: int) -> int:
        return int(self.ask(b"m%x,4" % addr), 16)

    def detach(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.ask(b"D")
        self.sock.close()


def expect_stop(reply: bytes, what: str) -> None:
    if not reply.startswith(b"T05"):
        raise SystemExit(f"{what}: expected a SIGTRAP stop, got {reply[:60]!r}")


def cycle(c: Rsp, bp: bytes, plain_c: bool, name: str) -> None:
    if not plain_c:
        c.ask(b"z0," + bp)
        c.ask(b"s")
        c.ask(b"Z0," + bp)
    expect_stop(c.ask(b"c"), name)


def rsp_rate(server: Server, sym: dict[str, int], hits: int, plain_c: bool) -> float:
    """Hits per second of a raw client; ``plain_c``: ``c`` per hit instead of ``z0;s;Z0;c``."""
    c = Rsp(connect(server))
    try:
        c.handshake()
        bp = b"%x,4" % sym["hit"]
        if c.ask(b"Z0," + bp) != b"OK":
            raise SystemExit(f"{server.name}: Z0 refused")
        expect_stop(c.ask(b"c"), server.name)
        # One untimed cycle first. A client attaching to the running guest may find it stopped
        # on `hit` (then the first c reports the breakpoint without running anything), and on
        # the emulated host that stop can sit on the store already made (its store runs twice,
        # counting once; tests/e2e/test_gdb_interrupt.py, reported to the emuhost's owner).
        cycle(c, bp, plain_c, server.name)
        before = c.read_word(sym["count"])
        t0 = time.perf_counter()
        for _ in range(hits):
            cycle(c, bp, plain_c, server.name)
        elapsed = time.perf_counter() - t0
        after = c.read_word(sym["count"])
        if after - before != hits:
            raise SystemExit(
                f"{server.name}: {hits} breakpoint stops but the guest counted {after - before}"
            )
        c.ask(b"z0," + bp)
        return hits / elapsed
    finally:
        c.detach()


# -- GDB ------------------------------------------------------------------------------------


def gdb_batch(elf: Path, commands: list[str], timeout: float) -> str:
    """What ``gdb-multiarch -batch`` on ``elf`` printed (stdout and stderr) running
    ``commands`` in order."""
    args = [GDB, "-nx", "-batch", str(elf)]
    for cmd in commands:
        args += ["-ex", cmd]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        # seen once with QEMU's stub on a loaded machine: GDB and QEMU both busy, no stop
        last = (e.stdout or b"")[-400:]
        text = last.decode(errors="replace") if isinstance(last, bytes) else last
        raise SystemExit(
            f"GDB did not finish {commands[-3:]} within {timeout:.0f} s (its last output: "
            f"{text!r}); the target stopped answering, no figure for this run"
        ) from None
    return out.stdout + out.stderr


def gdb_rate(server: Server, elf: Path, sym: dict[str, int], hits: int) -> float:
    """Hits per second with GDB resuming through an ignore count, timed inside GDB."""
    commands = [
        "set confirm off",
        "set pagination off",
        "set endian big",
        f"target remote 127.0.0.1:{server.port}",
        "break *hit",
        "continue",
        "python gdb.set_convenience_variable('before', int(gdb.parse_and_eval('*(int *)&count')))",
        f"ignore 1 {hits - 1}",
        "python import time; t0 = time.perf_counter()",
        "continue",
        "python print('ELAPSED %.9f' % (time.perf_counter() - t0))",
        "python print('COUNTED %d' % (int(gdb.parse_and_eval('*(int *)&count')) - "
        "int(gdb.convenience_variable('before'))))",
        "delete",
        "detach",
    ]
    text = gdb_batch(elf, commands, timeout=300)
    elapsed = re.search(r"^ELAPSED ([0-9.]+)", text, re.M)
    counted = re.search(r"^COUNTED (\d+)", text, re.M)
    if elapsed is None or counted is None:
        raise SystemExit(f"{server.name}: GDB run failed:\n{text}")
    if int(counted.group(1)) != hits:
        raise SystemExit(f"{server.name}: GDB stopped {hits} times, the guest counted "
                         f"{counted.group(1)}")  # fmt: skip
    return hits / float(elapsed.group(1))


CONDITIONS = {
    ("hit", "register"): "$r4 % 1000 == 0",
    ("hit", "memory"): "*(int *){count:#x} % 1000 == 999",
    ("loop", "register"): "$r4 % 1000 == 0",
    ("loop", "memory"): "*(int *){count:#x} % 1000 == 0",
}
"""True once in 1,000 hits of ``hit`` or ``loop``, each stopping with r4 % 1000 == 0: at ``hit``
r4 is the iteration about to be stored and ``count`` the one stored before it; at ``loop`` r4
and ``count`` both hold the last iteration stored. The memory word is named by its address: GDB
compiles no agent expression for ``&count`` of a symbol without debug information and then
evaluates the condition itself, even with a stub that offers to."""


def cond_rate(server: Server, elf: Path, at: str, which: str, stops: int) -> float:
    """Condition evaluations per second for ``break *<at> if <cond>``, timed inside GDB over
    ``stops`` stops (1,000 hits each). GDB hands the condition to a stub that offers
    ``ConditionalBreakpoints+`` (guestdbg) and evaluates it itself at every hit otherwise
    (QEMU): a stop, a register or memory read, and a resume per hit."""
    condition = CONDITIONS[(at, which)].format(count=symbols(elf)["count"])
    commands = [
        "set confirm off",
        "set pagination off",
        "set endian big",
        f"target remote 127.0.0.1:{server.port}",
        # both servers run the guest on between runs (QEMU at millions of iterations a second):
        # start each run's count at 0, or it passes 2^31 and a signed `% 1000` never matches
        "set var $r4 = 0",
        "set var *(int *)&count = 0",
        f"break *{at} if {condition}",
        "continue",
        "python gdb.set_convenience_variable('before', int(gdb.parse_and_eval('*(int *)&count')))",
        "python import time; t0 = time.perf_counter()",
        *["continue"] * stops,
        "python print('ELAPSED %.9f' % (time.perf_counter() - t0))",
        "python print('COUNTED %d' % (int(gdb.parse_and_eval('*(int *)&count')) - "
        "int(gdb.convenience_variable('before'))))",
        "python print('R4 %d' % int(gdb.parse_and_eval('$r4')))",
        "delete",
        "detach",
    ]
    text = gdb_batch(elf, commands, timeout=600)
    elapsed = re.search(r"^ELAPSED ([0-9.]+)", text, re.M)
    counted = re.search(r"^COUNTED (\d+)", text, re.M)
    r4 = re.search(r"^R4 (\d+)", text, re.M)
    if elapsed is None or counted is None or r4 is None:
        raise SystemExit(f"{server.name}: GDB run failed:\n{text}")
    if int(counted.group(1)) != 1000 * stops or int(r4.group(1)) % 1000:
        raise SystemExit(f"{server.name}: {stops} stops on '{condition}' at {at} but the guest "
                         f"counted {counted.group(1)} hits, r4={r4.group(1)}")  # fmt: skip
    return 1000 * stops / float(elapsed.group(1))


def first_line() -> int:
    """The range guest's first loop line, by its ``# line: first`` marker."""
    for n, text in enumerate(RANGE_GUEST.read_text().splitlines(), 1):
        if "# line: first" in text:
            return n
    raise SystemExit(f"{RANGE_GUEST}: no '# line: first' marker")


def range_rate(server: Server, elf: Path, lines: int) -> float:
    """Source lines per second of GDB's ``next`` over the range guest's lines, timed inside
    GDB; every line's instructions are checked to have run (r3)."""
    commands = [
        "set confirm off",
        "set pagination off",
        "set endian big",
        f"target remote 127.0.0.1:{server.port}",
        f"tbreak {RANGE_GUEST.name}:{first_line()}",
        "continue",
        "python r3 = int(gdb.parse_and_eval('$r3'))",
        "python import time; t0 = time.perf_counter(); "
        f"[gdb.execute('next', to_string=True) for _ in range({lines})]; "
        "dt = time.perf_counter() - t0",
        "python print('ELAPSED %.9f' % dt)",
        "python print('RAN %d' % ((int(gdb.parse_and_eval('$r3')) - r3) & 0xffffffff))",
        "detach",
    ]
    text = gdb_batch(elf, commands, timeout=600)
    elapsed = re.search(r"^ELAPSED ([0-9.]+)", text, re.M)
    ran = re.search(r"^RAN (\d+)", text, re.M)
    if elapsed is None or ran is None:
        raise SystemExit(f"{server.name}: GDB range run failed:\n{text}")
    if int(ran.group(1)) != lines * LINE_INSNS:
        raise SystemExit(f"{server.name}: {lines} nexts of {LINE_INSNS}-instruction lines ran "
                         f"{ran.group(1)} instructions")  # fmt: skip
    return lines / float(elapsed.group(1))


def measure_range(rounds: int, lines: int) -> Results:
    elf = build(RANGE_GUEST, BUILD, debug_lines=True)
    res = Results()
    with servers(elf) as (ours, qemu):
        runs = [("guestdbg", ours), ("qemu", qemu)]
        for r in range(rounds):
            for target, server in runs if r % 2 == 0 else runs[::-1]:
                rate = range_rate(server, elf, lines)
                res.add(target, "range", rate)
                print(f"round {r + 1}: {target:8s} next  {rate:8.1f} lines/s", flush=True)
    return res


# -- the loopback floor ---------------------------------------------------------------------

ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print(srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reply = b"$00000000#00"
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
        while b"#" in buf and len(buf) >= buf.index(b"#") + 3:
            buf = buf[buf.index(b"#") + 3 :]
            conn.sendall(reply)
    """
)


def loopback_round_trip(count: int) -> float:
    """Median seconds of one packet round trip between two Python processes (no-ack)."""
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Rsp(sock)
        c.acks = False
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            c.ask(b"m100000,4")
            times.append(time.perf_counter() - t0)
        sock.close()
        return statistics.median(times)
    finally:
        proc.kill()
        proc.wait()


# -- where a hit's time goes ----------------------------------------------------------------

HOST_CALLS = (
    *("run", "get_regs", "set_regs", "get_sregs", "set_sregs", "set_guest_debug"),
    *("get_one_reg", "set_one_reg", "translate", "kick"),
)
ARCH_CALLS = (
    *("encode_guest_debug", "decode_exit", "guest_verdict", "inject", "pc"),
    *("after_guest_debug", "step_targets"),
)
SESSION_CALLS = (
    *("insert_point", "remove_point", "read_memory", "write_memory", "resume"),
    *("read_registers", "read_some_registers", "write_registers", "interrupt"),
)


class CategoryClock:
    """Exclusive wall time per (thread, category): a wrapped call's time minus the time of the
    wrapped calls it made. Wrappers are instance attributes, so only this run is affected.

    A wrapper costs time of its own; :meth:`calibrate` measures it on a no-op, and that cost is
    taken out of the categories and shown apart (``overhead``), so the categories add up to
    what the run would cost without them."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], float] = {}
        self.calls: dict[tuple[str, str], int] = {}
        self._local = threading.local()
        self.outside = 0.0
        """Wrapper time outside the measured span, per call (charged to no category)."""
        self.inside = 0.0
        """Wrapper time inside the measured span, per call (taken out of the callee's)."""

    def calibrate(self, calls: int = 20000) -> None:
        class Probe:
            def noop(self) -> None:
                pass

        probe = Probe()
        t0 = time.perf_counter()
        for _ in range(calls):
            probe.noop()
        plain = (time.perf_counter() - t0) / calls
        self.wrap(probe, "noop", "calibration")
        t0 = time.perf_counter()
        for _ in range(calls):
            probe.noop()
        wrapped = (time.perf_counter() - t0) / calls
        measured = self.totals.pop(("server", "calibration")) / calls
        self.calls.pop(("server", "calibration"))
        self.inside = max(measured - plain, 0.0)
        self.outside = max(wrapped - measured, 0.0)

    def wrap(self, obj: object, name: str, category: str) -> None:
        fn = getattr(obj, name, None)
        if fn is None:
            return
        local = self._local
        totals, calls = self.totals, self.calls

        def timed(*args: object, **kwargs: object) -> object:
            stack = local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                inner = stack.pop()
                if stack:
                    stack[-1] += dt + self.outside
                vcpu = threading.current_thread().name.startswith("guestdbg-vcpu")
                key = ("vcpu" if vcpu else "server", category)
                totals[key] = totals.get(key, 0.0) + dt - inner - self.inside
                calls[key] = calls.get(key, 0) + 1

        setattr(obj, name, timed)

    def get(self, thread: str, category: str) -> float:
        return self.totals.get((thread, category), 0.0)

    @property
    def overhead(self) -> float:
        return sum(self.calls.values()) * (self.inside + self.outside)


def instrument(clock: CategoryClock, session: Any, stub: Any) -> None:
    vm = session.vm
    for v in vm.vcpus:
        for name in HOST_CALLS:
            clock.wrap(v, name, "host-run" if name == "run" else "host")
    for name in ("read_phys", "write_phys"):
        clock.wrap(vm, name, "host")
    for ops in session.ops:
        for name in ARCH_CALLS:
            clock.wrap(ops, name, "arch")
    for p in session.ports:
        p._after_guest_debug = getattr(p.ops, "after_guest_debug", None)
        clock.wrap(p, "before_run", "session")
        clock.wrap(p, "after_exit", "session")
        clock.wrap(p.filter, "decide", "session")
    clock.wrap(session.gdb_arch, "read_registers", "arch")
    clock.wrap(session.gdb_arch, "write_registers", "arch")
    for name in SESSION_CALLS:
        clock.wrap(session, name, "session")
    clock.wrap(session, "wait_stop", "wait")
    clock.wrap(stub, "receive", "stub")
    clock.wrap(stub, "report_stop", "stub")


RAW_CYCLE = ("z0,{hit:x},4", "s", "Z0,{hit:x},4", "c")
GDB_CYCLE = ("z0,{hit:x},4", "m{hit:x},4", "vCont;s:1", "Z0,{hit:x},4", "vCont;c")
"""What GDB sends per hit with an ignore count (its ``set debug remote 1`` log)."""


def in_process_cycle(
    elf: Path,
    sym: dict[str, int],
    cycle: tuple[str, ...],
    hits: int,
    timed: bool,
    null: bool = False,
) -> tuple[float, CategoryClock]:
    """Seconds per hit for ``cycle`` fed straight into the stub (as the server does, minus the
    socket), and the per-category clock when ``timed``; ``null``: against a NullTarget."""
    from guestdbg.gdb.context import StubState
    from guestdbg.gdb.stub import GdbStub
    from guestdbg.plugins import default_registry
    from guestdbg.session import Session

    vm = default_registry().emulated_host("e500mc").create_vm(str(elf), smp=1)
    session = Session(vm, "e500mc", attach=False)
    target: Any = NullTarget(session, sym["hit"]) if null else session
    stub = GdbStub(target)
    stub.connection_made()
    bodies = [c.format(hit=sym["hit"]).encode() for c in cycle]
    clock = CategoryClock()

    def send(body: bytes) -> None:
        stub.receive(b"$%b#%02x" % (body, sum(body) & 0xFF))
        if stub.state is StubState.RUNNING:
            ev = target.wait_stop(IO_TIMEOUT)
            if ev is None:
                raise SystemExit("in-process run: no stop")
            stub.report_stop(ev)

    try:
        for body in (b"qSupported:swbreak+;hwbreak+;vContSupported+", b"QStartNoAckMode"):
            send(body)
        send(b"Z0,%x,4" % sym["hit"])
        send(b"c")
        if timed:
            clock.calibrate()
            instrument(clock, session, stub)
        t0 = time.perf_counter()
        for _ in range(hits):
            for body in bodies:
                send(body)
        return (time.perf_counter() - t0) / hits, clock
    finally:
        session.close()


class NullTarget:
    """A DebugTarget that answers at once with values taken from a real session: what is left
    of a cycle against it is the stub's own work."""

    def __init__(self, session: Any, hit: int) -> None:
        from guestdbg.events import StopEvent, StopKind, StopReason

        self.gdb_arch = session.gdb_arch
        self.caps = session.caps
        self._regs = session.read_registers(0)
        self._word = session.read_memory(0, hit, 4)
        self._stop = StopEvent(0, StopReason(StopKind.SW_BREAK, hit))

    def attach(self) -> Any:
        return self._stop

    def vcpu_count(self) -> int:
        return 1

    def vcpu_name(self, vcpu: int) -> str:
        return "vCPU 0"

    def read_registers(self, vcpu: int) -> list[int | None]:
        return self._regs

    def read_memory(self, vcpu: int, addr: int, length: int) -> bytes:
        return self._word[:length]

    def insert_point(self, point: Any) -> None:
        pass

    def remove_point(self, point: Any) -> None:
        pass

    def resume(self, actions: Any) -> None:
        pass

    def wait_stop(self, timeout: float | None) -> Any:
        return self._stop


@dataclass
class Breakdown:
    name: str
    round_trips: int
    measured: float
    """Seconds per hit over TCP, from the alternating rounds."""
    plain: float = 0.0
    timed: float = 0.0
    stub_alone: float = 0.0
    clock: CategoryClock = field(default_factory=CategoryClock)


def where_time_goes(
    elf: Path, sym: dict[str, int], hits: int, floor: float, rows: list[Breakdown], repeats: int
) -> None:
    """Each in-process run ``repeats`` times, interleaved; the median (the machine is shared)."""
    cycles = {"raw": RAW_CYCLE, "gdb": GDB_CYCLE}
    for b in rows:
        plain, timed, alone = [], [], []
        clocks = []
        for _ in range(repeats):
            plain.append(in_process_cycle(elf, sym, cycles[b.name], hits, timed=False)[0])
            per, clock = in_process_cycle(elf, sym, cycles[b.name], hits, timed=True)
            timed.append(per)
            clocks.append((per, clock))
            alone.append(in_process_cycle(elf, sym, cycles[b.name], hits, False, null=True)[0])
        b.plain, b.stub_alone = statistics.median(plain), statistics.median(alone)
        b.timed, b.clock = sorted(clocks, key=lambda pc: pc[0])[len(clocks) // 2]
    us = 1e6 / hits
    print()
    print("where a guestdbg hit's time goes, us per hit (in-process runs of the same packets,")
    print(
        f"no socket, medians of {repeats}; categories: exclusive wall time of instrumented calls):"
    )
    print(f"  {'':46s}" + "".join(f"{b.name + ' cycle':>12s}" for b in rows))

    def both(b: Breakdown, category: str) -> float:
        return b.clock.get("server", category) + b.clock.get("vcpu", category)

    def handoffs(b: Breakdown) -> float:
        busy = sum(b.clock.get("vcpu", c) for c in ("session", "arch", "host", "host-run"))
        return max(b.clock.get("server", "wait") - busy, 0.0)

    lines: list[tuple[str, Callable[[Breakdown], float]]] = [
        ("loopback: round trips x floor", lambda b: b.round_trips * floor * 1e6),
        ("stub: framing, parsing, replies", lambda b: b.clock.get("server", "stub") * us),
        ("  (the stub alone, against a null target)", lambda b: b.stub_alone * 1e6),
        ("session, server thread", lambda b: b.clock.get("server", "session") * us),
        ("session, vCPU thread (run loop, filter)", lambda b: b.clock.get("vcpu", "session") * us),
        ("arch ops: BookE encode/decode/pc/registers", lambda b: both(b, "arch") * us),
        # a resume of the only vCPU runs on the server thread (Runner.run_inline): count both
        ("emulated host: KVM_RUN", lambda b: both(b, "host-run") * us),
        ("emulated host: other ioctls, guest memory", lambda b: both(b, "host") * us),
        ("thread hand-offs: waiting minus vCPU work", lambda b: handoffs(b) * us),
        ("(instrumentation overhead, taken out above)", lambda b: b.clock.overhead * us),
        ("= in-process total, instrumented", lambda b: b.timed * 1e6),
        ("  in-process total, not instrumented", lambda b: b.plain * 1e6),
        ("over TCP, measured above", lambda b: b.measured * 1e6),
        (
            "rest: the client (GDB itself) and socket I/O",
            lambda b: (b.measured - b.plain - b.round_trips * floor) * 1e6,
        ),
    ]
    for label, value in lines:
        print(f"  {label:46s}" + "".join(f"{value(b):12.1f}" for b in rows))


# -- the run --------------------------------------------------------------------------------


@dataclass
class Results:
    rates: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, target: str, client: str, rate: float) -> None:
        self.rates.setdefault((target, client), []).append(rate)

    def median(self, target: str, client: str) -> float:
        return statistics.median(self.rates[(target, client)])


def measure(
    rounds: int, gdb_hits: int, rsp_hits: int, floor_trips: int
) -> tuple[Results, list[float]]:
    elf = build(GUEST, BUILD)
    sym = symbols(elf)
    res = Results()
    floors = []
    with servers(elf) as (ours, qemu):
        runs: list[tuple[str, str, Callable[[], float]]] = [
            ("guestdbg", "gdb", lambda: gdb_rate(ours, elf, sym, gdb_hits)),
            ("qemu", "gdb", lambda: gdb_rate(qemu, elf, sym, gdb_hits)),
            ("guestdbg", "rsp", lambda: rsp_rate(ours, sym, rsp_hits, plain_c=False)),
            ("qemu", "rsp", lambda: rsp_rate(qemu, sym, rsp_hits, plain_c=False)),
            ("guestdbg", "rsp-c", lambda: rsp_rate(ours, sym, rsp_hits, plain_c=True)),
        ]
        for at, which in CONDITIONS:
            name = f"cond-{at}-{which}"
            runs += [
                ("guestdbg", name, lambda a=at, w=which: cond_rate(ours, elf, a, w, 5)),  # type: ignore[misc]
                ("qemu", name, lambda a=at, w=which: cond_rate(qemu, elf, a, w, 1)),  # type: ignore[misc]
            ]
        for r in range(rounds):
            floors.append(loopback_round_trip(floor_trips))
            order = runs if r % 2 == 0 else runs[::-1]
            for target, client, run in order:
                rate = run()
                res.add(target, client, rate)
                print(f"round {r + 1}: {target:8s} {client:5s} {rate:8.0f} hits/s", flush=True)
    return res, floors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--gdb-hits", type=int, default=400)
    p.add_argument("--rsp-hits", type=int, default=1000)
    p.add_argument("--floor-trips", type=int, default=2000)
    p.add_argument("--breakdown-hits", type=int, default=1000)
    p.add_argument("--range-lines", type=int, default=40)
    args = p.parse_args()
    for tool in (GDB, QEMU):
        if shutil.which(tool) is None:
            print(f"vs_qemu: {tool} not found (tools/bootstrap.sh installs it)", file=sys.stderr)
            return 2
    res, floors = measure(args.rounds, args.gdb_hits, args.rsp_hits, args.floor_trips)
    ranged = measure_range(args.rounds, args.range_lines)
    floor = statistics.median(floors)
    print()
    print(f"machine: {os.cpu_count()} CPUs; medians of {args.rounds} alternating rounds")
    print(f"loopback RSP round trip (Python to Python, no-ack): {floor * 1e6:.1f} us")
    for client, k, what in (
        ("gdb", 5, "GDB, break + ignore count"),
        ("rsp", 4, "raw RSP, z0;s;Z0;c per hit"),
    ):
        ours = res.median("guestdbg", client)
        theirs = res.median("qemu", client)
        print(f"{what}:")
        print(f"  guestdbg {ours:8.0f} hits/s  ({1e6 / ours:7.1f} us/hit)")
        print(f"  qemu     {theirs:8.0f} hits/s  ({1e6 / theirs:7.1f} us/hit)")
        print(f"  ratio    {ours / theirs:8.2f}   floor for {k} round trips/hit: "
              f"{1 / (k * floor):.0f} hits/s")  # fmt: skip
    where_time_goes(
        build(GUEST, BUILD),
        symbols(build(GUEST, BUILD)),
        args.breakdown_hits,
        floor,
        [
            Breakdown("raw", 4, 1 / res.median("guestdbg", "rsp")),
            Breakdown("gdb", 5, 1 / res.median("guestdbg", "gdb")),
        ],
        args.rounds,
    )
    print()
    plain = res.median("guestdbg", "rsp-c")
    print(f"raw RSP, plain c per hit (guestdbg steps over on its own): {plain:.0f} hits/s "
          f"({1e6 / plain:.1f} us/hit; floor for 1 round trip: {1 / floor:.0f})")  # fmt: skip
    ours, theirs = ranged.median("guestdbg", "range"), ranged.median("qemu", "range")
    print(f"GDB next over {LINE_INSNS}-instruction lines (guestdbg range-steps, QEMU steps):")
    print(f"  guestdbg {ours:8.1f} lines/s  ({1e3 / ours:7.2f} ms/line)")
    print(f"  qemu     {theirs:8.1f} lines/s  ({1e3 / theirs:7.2f} ms/line)")
    gdb_ratio = res.median("guestdbg", "gdb") / res.median("qemu", "gdb")
    rsp_ratio = res.median("guestdbg", "rsp") / res.median("qemu", "rsp")
    range_ratio = ours / theirs
    cond_ratios: dict[str, list[float]] = {}
    for at, which in CONDITIONS:
        name = f"cond-{at}-{which}"
        ours, theirs = res.median("guestdbg", name), res.median("qemu", name)
        cond_ratios.setdefault(at, []).append(ours / theirs)
        print(f"break *{at} if <{which} condition> (true once in 1,000 hits), evaluations/s:")
        print(f"  guestdbg {ours:8.0f}  qemu {theirs:8.0f}  ratio {ours / theirs:6.1f}")
    cond_ratio = min(cond_ratios["loop"])  # the weaker of the register and the memory condition
    cond_store = min(cond_ratios["hit"])
    print(f"gdb_ratio={gdb_ratio:.3f} rsp_ratio={rsp_ratio:.3f} cond_ratio={cond_ratio:.3f} "
          f"range_ratio={range_ratio:.3f} cond_store_ratio={cond_store:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
