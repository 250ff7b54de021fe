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

Usage: ``python bench/soak.py [--minutes M | --connections N] [--seed S] [--vcpus V]
[--warmup F]``. Default: 30 minutes, two vCPUs, the first fifth of the run as warm-up.

What is measured, and why so. The question is whether this process (the VMM's side: emulated
host, session, server) leaks: keeps more memory or threads the longer debuggers come and go.
Two things would blur the answer, and the measurement is built around them:

* **Warm-up that stops by itself.** Some memory fills up to a bound in the first minutes and
  then stays: each engine's translated-code buffer (``TCG_BUFFER_SIZE``, 4 MiB, resident as it
  is first written and reused after its flush), the guest RAM pages and malloc arenas first
  touched. The run's first ``F`` (``--warmup``, a fraction of its minutes or connections) is
  therefore warm-up, and growth is measured from its end. The resident size after the first
  connection is printed too (``first:``), so what the warm-up took is in the output.
* **Transients.** A sample is one instant, and a block allocated and freed again (a big table
  resized, a reply being built) can be caught in it. The resident size (``VmRSS``) is sampled
  every second by a thread of its own, and each figure is the *floor* of a window: the smallest
  sample of the last :data:`WINDOW` seconds before the point (for the end, none from before the
  baseline), a fresh sample taken after ``gc.collect()`` included. A leak raises the floor; a
  transient does not. The window's *peak* is printed beside it (and the floor and peak of every
  five minutes), so transients are reported, not hidden.

Threads are counted after the guest has run undebugged for :data:`SETTLE` seconds, longer than
the session's inline-run watchdog outlives its last inline run (it exists only while a
debugger's resumes are driven inline), so both counts are of the same steady set: the main
thread, the server's, one per vCPU. Their names are printed.

Printed: ``first:`` (after the first connection), ``baseline:`` (end of the warm-up) and
``end:`` with floor, peak and threads, every five minutes the floor and peak since the last
report, the counts of what was done, and as the last line ``rss_start_kb=<int>
rss_end_kb=<int> rss_growth=<+x.x%> threads_start=<int> threads_end=<int>
byte_identical=<yes|no> errors=<int> minutes=<float>``, where the two sizes are the baseline
and end floors and the threads the settled counts at those points. Target: growth under 10 %,
byte-identical, no errors. The code buffers filled in the first two minutes at the soak's
pace, so a run with a shorter warm-up (under ten minutes with the default) shows part of the
warm-up as growth. Each error is printed when
it happens with what explains it: GDB's last MI lines, the connection's last packets each way
(the server's ``trace``) and the session's last run-control events (``RunControl.history``).
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sys
import threading
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
WINDOW = 30.0
"""Seconds of samples a floor and a peak are taken over: several times the longest transient
seen (the soft-TLB tables of docs/reference/unicorn.md §12 lived up to 6 s), short enough
that the floor is the state at its point, not the warm-up before it."""
SAMPLE_PERIOD = 1.0
"""Seconds between two samples of the resident size."""
SETTLE = 1.5
"""Seconds the guest runs undebugged before threads are counted: more than the second the
session's watchdog thread lives on after the last inline run (``session/threads.py``)."""
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


class RssSampler:
    """``VmRSS`` of this process every :data:`SAMPLE_PERIOD` seconds, on a thread of its own,
    as ``(time.monotonic(), KiB)``."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_PERIOD):
            self.sample()

    def sample(self) -> int:
        rss = proc_status()[0]
        with self._lock:
            self.samples.append((time.monotonic(), rss))
        return rss

    def window(self, since: float) -> tuple[int, int]:
        """(floor, peak) of the samples from ``since`` on, with a fresh one after a collection
        (so a window is never empty)."""
        gc.collect()
        self.sample()
        with self._lock:
            values = [rss for t, rss in self.samples if t >= since]
        return min(values), max(values)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def settled_threads() -> tuple[int, list[str]]:
    """Threads of this process, counted after the guest ran undebugged for :data:`SETTLE`
    seconds; the sampler's own thread is not counted."""
    time.sleep(SETTLE)
    ours = [t for t in threading.enumerate() if t.name == "soak-rss-sampler"]
    names = sorted(t.name for t in threading.enumerate() if t not in ours)
    return proc_status()[1] - len(ours), names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--connections", type=int, default=0, help="stop after N (not after time)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--vcpus", type=int, default=2, choices=(1, 2, 3, 4))
    ap.add_argument(
        "--warmup", type=float, default=0.2, help="fraction of the run before the baseline"
    )
    a = ap.parse_args()
    if not 0 <= a.warmup < 1:
        ap.error("--warmup must be in [0, 1)")
    soak = Soak(a.seed, a.vcpus)
    sampler = RssSampler()
    started = time.monotonic()
    soak.connection()
    threads_first, _ = settled_threads()
    rss_first, _ = sampler.window(time.monotonic())
    print(f"first: rss_kb={rss_first} threads={threads_first} (after the first connection)")
    sampler.start()

    def elapsed() -> float:
        return time.monotonic() - started

    def done(fraction: float) -> bool:
        if a.connections:
            return soak.counts["connections"] >= max(1, round(fraction * a.connections))
        return elapsed() >= fraction * a.minutes * 60

    def window_start(after: float) -> float:
        return max(after, time.monotonic() - WINDOW)

    while not done(a.warmup):
        soak.connection()
    rss0, peak0 = sampler.window(window_start(started))
    baseline_at = time.monotonic()
    threads0, names0 = settled_threads()
    print(
        f"baseline: rss_kb={rss0} peak_kb={peak0} threads={threads0} ({', '.join(names0)}) "
        f"after {elapsed() / 60:.1f} min, {soak.counts['connections']} connections",
        flush=True,
    )
    report_from = time.monotonic()
    next_report = report_from + 300
    while not done(1.0):
        soak.connection()
        if time.monotonic() >= next_report:
            floor, peak = sampler.window(report_from)
            print(
                f"{elapsed() / 60:.1f} min: rss_kb floor={floor} peak={peak} "
                f"connections={soak.counts['connections']} errors={len(soak.errors)}",
                flush=True,
            )
            report_from, next_report = time.monotonic(), next_report + 300
    rss1, peak1 = sampler.window(window_start(baseline_at))
    threads1, names1 = settled_threads()
    sampler.stop()
    minutes = elapsed() / 60
    print(f"end: rss_kb={rss1} peak_kb={peak1} threads={threads1} ({', '.join(names1)})")
    soak.close()
    for e in soak.errors[:20]:
        print(f"error: {e.splitlines()[0]}")
    counts = " ".join(f"{k}={v}" for k, v in sorted(soak.counts.items()))
    print(f"done: {counts} identical_after={soak.identical_after}")
    identical = "yes" if soak.identical_after == soak.counts["connections"] else "no"
    print(
        f"rss_start_kb={rss0} rss_end_kb={rss1} rss_growth={(rss1 - rss0) / rss0 * 100:+.1f}% "
        f"threads_start={threads0} threads_end={threads1} byte_identical={identical} "
        f"errors={len(soak.errors)} minutes={minutes:.1f}"
    )
    return 1 if soak.errors else 0


if __name__ == "__main__":
    sys.exit(main())
