"""Soak (issue 13): a long randomized session of the real gdb-multiarch against guestdbg's stub on
the emulated e500mc host with two vCPUs, one debugger after another.

Guest: ``tests/e2e/guests/smp_tick.S`` (both vCPUs loop forever calling ``tick``, each counting
in its own word of ``counters``). Each connection is a new ``gdb-multiarch`` (driven through MI,
``guestdbg.demo.gdbmi``) that attaches, does a random number of random things - software and
hardware breakpoints, write/read/access watchpoints on the counters, ``delete``, ``stepi`` on
either thread (scheduler-locking on or off), ``continue`` to the next hit, ``continue`` then
Ctrl-C (with no point the guest would reach: nothing else would stop it), register and memory
reads - and then leaves: ``detach``, ``quit``, or killed (SIGKILL, the connection lost while
the guest is stopped or running). After each the server must have detached (the next GDB can
attach), the guest must run on, and its code must equal the ELF's byte for byte.

Usage: ``python bench/soak.py [--minutes M | --connections N] [--seed S] [--vcpus V]``.
Default: 30 minutes, two vCPUs.
Printed: the resident memory and thread count of this process (the VMM's side: emulated host,
session, server) after the first connection and after the last, the counts of what was done,
and as the last line ``rss_start_kb=<int> rss_end_kb=<int> rss_growth=<+x.x%>
threads_start=<int> threads_end=<int> byte_identical=<yes|no> errors=<int> minutes=<float>``.
Target: growth under 10 %, byte-identical, no errors. Each error is printed when it happens
with what explains it: GDB's last MI lines, the connection's last packets each way (the
server's ``trace``) and the session's last run-control events (``RunControl.history``).
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from guestdbg.demo.elf_info import symbols
from guestdbg.demo.gdbmi import GdbDriverError, GdbMi
from guestdbg.demo.script import HostView
from guestdbg.gdb.server import GdbServer, format_trace
from guestdbg.plugins import default_registry
from guestdbg.session import Session
from guestdbg_booke.guests import build

ROOT = Path(__file__).resolve().parents[1]
GUEST = ROOT / "tests" / "e2e" / "guests" / "smp_tick.S"
BUILD = ROOT / "tests" / "guests" / "build" / "e2e"
WAIT = 30.0
POINT_NUMBER = re.compile(
    r"^(?:Hardware assisted breakpoint|Breakpoint|\S.*atchpoint) (\d+)", re.MULTILINE
)
TRACE = 30
"""Packets each way the server keeps, and run-control events the session keeps, to explain
an error."""
HW_SLOTS = 2
"""IACs and DACs of the e500mc: at most two hardware breakpoints and two watchpoints live, so
GDB never has to give up a resume for want of a slot."""


def proc_status() -> tuple[int, int]:
    """(VmRSS in KiB, threads) of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["Threads"])


def elf_image(elf: Path) -> list[tuple[int, bytes]]:
    """The ELF's read-only loaded contents (code and constants), by guest address."""
    out = []
    with open(elf, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            flags = int(sec["sh_flags"])
            if sec["sh_type"] == "SHT_PROGBITS" and flags & 0x2 and not flags & 0x1:
                out.append((int(sec["sh_addr"]), sec.data()))
    return out


@dataclass
class Point:
    number: int
    slot: str
    """"sw", "hw" (an IAC) or "watch" (a DAC)."""
    reached: bool
    """The guest's loop reaches it (a continue stops); ``_start`` is never run again."""


@dataclass
class Soak:
    seed: int
    vcpus: int = 2
    rng: random.Random = field(init=False)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    identical_after: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.elf = build(GUEST, BUILD)
        self.sym = symbols(self.elf)
        self.vm = (
            default_registry().emulated_host("e500mc").create_vm(str(self.elf), smp=self.vcpus)
        )
        self.view = HostView(self.vm, "big")
        self.image = elf_image(self.elf)
        for addr, data in self.image:
            self.view.map(addr, len(data))
        self.view.map(self.sym["counters"], 4 * self.vcpus)
        self.session = Session(self.vm, "e500mc")
        self.session.control.keep_history(2 * TRACE)
        self.server = GdbServer(self.session, ("127.0.0.1", 0), trace=TRACE)
        self.server.start()
        self.port = self.server.bound_address[1]  # type: ignore[index]
        self.session.detach()  # the guest runs undebugged until the first GDB arrives

    # -- checks --------------------------------------------------------------------------

    def differing_bytes(self) -> int:
        return sum(
            a != b
            for addr, data in self.image
            for a, b in zip(self.view.read(addr, len(data)), data, strict=True)
        )

    def counters(self) -> list[int]:
        c = self.sym["counters"]
        return [self.view.word(c + 4 * i) for i in range(self.vcpus)]

    def wait_running(self) -> None:
        first = self.counters()
        deadline = time.monotonic() + WAIT
        while self.counters() == first:
            if time.monotonic() > deadline:
                raise GdbDriverError(f"the guest did not run after continue; {self.run_state()}")
            time.sleep(0.002)

    def run_state(self) -> str:
        """What the session's run control holds now (for an error that needs explaining)."""
        c = self.session.control
        with c.lock:
            ports = [
                f"vCPU {p.index}: phase={p.phase} step={p.step} exits={p.exits} "
                f"inline={c.inline[p.index]}"
                for p in self.session.ports
            ]
            return (
                f"running={sorted(c.running)} commands={c.commands} stop_all={c.stop_all} "
                f"stops={list(c.stops)} holder={c.holder} in_run={sorted(c.in_run)}; "
                + "; ".join(ports)
            )

    def explain(self, g: GdbMi, since: float) -> str:
        """What GDB said, what went over the wire and what run control did in this connection
        (times in seconds since it began), for an error's report."""
        mi = "\n".join(f"{t - since:+9.4f} {line}" for t, line in list(g.transcript)[-40:])
        history = list(self.session.control.history or ())  # a copy: vCPU threads append
        events = "\n".join(f"{t - since:+9.4f} {what}: {detail}" for t, what, detail in history)
        return (
            f"\n  -- GDB (MI) --\n{mi}\n  -- packets (< from GDB, > to GDB) --\n"
            f"{format_trace(self.server.trace, since)}\n  -- run control --\n{events}"
        )

    def after_leaving(self, how: str) -> None:
        deadline = time.monotonic() + WAIT
        while self.server.stub is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.server.stub is not None:
            self.errors.append(f"the server still serves a debugger {WAIT}s after {how}")
            return
        diff = self.differing_bytes()
        if diff:
            self.errors.append(f"{diff} code byte(s) differ from the ELF after {how}")
        else:
            self.identical_after += 1
        first = self.counters()
        while time.monotonic() < deadline:
            now = self.counters()
            if all(n != f for n, f in zip(now, first, strict=True)):
                return
            time.sleep(0.01)
        self.errors.append(f"a vCPU did not run on after {how}: counters {first} -> {now}")

    # -- one debugger ----------------------------------------------------------------------

    def connection(self) -> None:
        self.counts["connections"] += 1
        since = time.monotonic()
        g = GdbMi(self.elf, timeout=WAIT)
        try:
            g.check("set endian big")
            g.check(f"target remote 127.0.0.1:{self.port}")
            points: list[Point] = []
            for _ in range(self.rng.randint(3, 40)):
                self.action(g, points)
            how = self.rng.choices(["detach", "quit", "kill", "kill running"], [6, 2, 1, 1])[0]
        except GdbDriverError as e:
            time.sleep(0.5)  # what GDB still prints about it
            n = self.counts["connections"]
            self.errors.append(f"connection {n}: {e}{self.explain(g, since)}")
            print(f"error: {self.errors[-1]}", flush=True)
            how = "kill"
        self.counts[how] += 1
        if how == "detach":
            g.check("detach")
            g.close()
        elif how == "quit":
            g.close()  # GDB detaches on its way out
        else:
            if how == "kill running":  # running, or stopped at a point with the reply in flight
                g.send("continue")
                time.sleep(self.rng.uniform(0, 0.05))
            g.kill()
        self.after_leaving(how)

    def action(self, g: GdbMi, points: list[Point]) -> None:
        rng, sym = self.rng, self.sym
        roll = rng.random()
        self.counts["commands"] += 1
        if roll < 0.25 and len(points) < 6:
            self.add_point(g, points)
        elif roll < 0.35 and points:
            p = points.pop(rng.randrange(len(points)))
            g.check(f"delete {p.number}")
        elif roll < 0.55:
            g.check(f"set scheduler-locking {rng.choice(['on', 'off'])}")
            g.check(f"thread {rng.randint(1, self.vcpus)}")
            for _ in range(rng.randint(1, 4)):
                r = g.check("stepi")
                self.counts["steps"] += 1
                if r.stopped is None:
                    raise GdbDriverError("stepi did not stop")
        elif roll < 0.8:
            g.check("set scheduler-locking off")
            if any(p.reached for p in points):
                r = g.check("continue")
                if r.stopped is None:
                    raise GdbDriverError("continue did not stop at a point the loop reaches")
                self.counts["hits"] += 1
            else:
                g.send("continue")
                self.wait_running()  # Ctrl-C before GDB resumed would cancel the command
                time.sleep(rng.uniform(0, 0.05))
                g.interrupt()
                stop = g.wait_stopped()
                if stop.get("signal-name") != "SIGINT":
                    raise GdbDriverError(f"Ctrl-C stopped with {stop}")
                self.counts["ctrl-c"] += 1
        elif roll < 0.9:
            g.check("info registers pc msr lr")
        else:
            r = g.check(f"x/{self.vcpus}wx {sym['counters']:#x}")
            if "0x" not in r.console:
                raise GdbDriverError(f"memory read printed {r.console!r}")

    def add_point(self, g: GdbMi, points: list[Point]) -> None:
        rng, sym = self.rng, self.sym
        used = Counter(p.slot for p in points)
        kind = rng.choice(["break", "break", "hbreak", "watch", "rwatch", "awatch"])
        slot = {"break": "sw", "hbreak": "hw"}.get(kind, "watch")
        if slot != "sw" and used[slot] >= HW_SLOTS:
            kind, slot = "break", "sw"
        if slot == "watch":
            where = f"*(int *){sym['counters'] + 4 * rng.randrange(self.vcpus):#x}"
            reached = True
        else:
            name = rng.choice(["tick", "tick_store", "loop", "_start"])
            where, reached = f"*{sym[name]:#x}", name != "_start"
        r = g.check(f"{kind} {where}")
        number = POINT_NUMBER.search(r.console)
        if number is None:
            raise GdbDriverError(f"no point number in {r.console!r}")
        points.append(Point(int(number.group(1)), slot, reached))
        self.counts[kind] += 1

    def close(self) -> None:
        self.server.close()
        self.session.close()


def measure() -> tuple[int, int]:
    gc.collect()
    return proc_status()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--connections", type=int, default=0, help="stop after N (not after time)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--vcpus", type=int, default=2, choices=(1, 2, 3, 4))
    a = ap.parse_args()
    soak = Soak(a.seed, a.vcpus)
    started = time.monotonic()
    soak.connection()  # warms every path up: what is measured from here on is growth
    rss0, threads0 = measure()
    print(f"start: rss_kb={rss0} threads={threads0}", flush=True)
    next_report = started + 300
    while True:
        elapsed = time.monotonic() - started
        if a.connections and soak.counts["connections"] >= a.connections:
            break
        if not a.connections and elapsed >= a.minutes * 60:
            break
        soak.connection()
        if time.monotonic() >= next_report:
            next_report += 300
            rss, threads = measure()
            print(
                f"{elapsed / 60:.1f} min: rss_kb={rss} threads={threads} "
                f"connections={soak.counts['connections']} errors={len(soak.errors)}",
                flush=True,
            )
    rss1, threads1 = measure()
    minutes = (time.monotonic() - started) / 60
    soak.close()
    for e in soak.errors[:20]:
        print(f"error: {e.splitlines()[0]}")
    done = " ".join(f"{k}={v}" for k, v in sorted(soak.counts.items()))
    print(f"done: {done} identical_after={soak.identical_after}")
    identical = "yes" if soak.identical_after == soak.counts["connections"] else "no"
    print(
        f"rss_start_kb={rss0} rss_end_kb={rss1} rss_growth={(rss1 - rss0) / rss0 * 100:+.1f}% "
        f"threads_start={threads0} threads_end={threads1} byte_identical={identical} "
        f"errors={len(soak.errors)} minutes={minutes:.1f}"
    )
    return 1 if soak.errors else 0


if __name__ == "__main__":
    sys.exit(main())
