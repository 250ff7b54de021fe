"""Random programs on QEMU and on the emulated e500mc, e5500 or e6500 host, compared stop for
stop (``core``: the 64-bit cores get 64-bit programs and ``qemu-system-ppc64``).

For each seed: generate the program, build it (cached), put a breakpoint on every ordinary body
instruction and on ``done``, and run it to ``done`` on both sides at once (QEMU works in its own
process while the emulated host runs here). The two traces must have the same stops, and at
each stop the same registers and area memory, except where ``known`` explains the difference.
Anything else is an undocumented mismatch, kept with the seed and the stop where it first shows
(``python -m guestdbg_booke.fidelity SEED`` reruns one seed and prints them).

``run`` is what ``bench/fidelity.py`` calls: consecutive seeds, optionally over several worker
processes, one ``FidelityTally``.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from guestdbg.fidelity import Explain, FidelityTally, Mismatch, compare
from guestdbg.guest_build import cache_dir

from .emulated import EmulatedE500mc
from .generator import DEFAULT_LENGTH, Layout, generate
from .known import Explainer
from .qemu_oracle import QemuPpce500, qemu_for
from .trace import END_DONE, Trace

ARCH = "ppc_booke/e500mc"
STOP_TIMEOUT = 5.0


def arch_name(core: str) -> str:
    """The tally's name for ``core`` (``ARCH`` for e500mc)."""
    return f"ppc_booke/{core}"


@dataclass
class Timings:
    """Where a run's wall time went (seconds, summed over programs; the QEMU side overlaps
    the emulated one, so the parts add up to more than the wall time)."""

    build: float = 0.0
    qemu_start: float = 0.0
    qemu_trace: float = 0.0
    emulated: float = 0.0
    compare: float = 0.0
    wall: float = 0.0

    def add(self, other: Timings) -> None:
        for name in ("build", "qemu_start", "qemu_trace", "emulated", "compare", "wall"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class ProgramRun:
    seed: int
    layout: Layout
    reference: Trace
    host: Trace
    stops: int
    mismatches: list[Mismatch]


def compare_traces(
    seed: int, ref: Trace, host: Trace, explain: Explain
) -> tuple[int, list[Mismatch]]:
    """(stops compared, mismatches). Comparison ends where the stops diverge (a different PC):
    what follows would only repeat the divergence."""
    out: list[Mismatch] = []
    n = min(len(ref.states), len(host.states))
    for i in range(n):
        a, b = ref.states[i], host.states[i]
        if a == b:
            continue
        found = compare(seed, i, a["pc"] or 0, a, b, explain)
        out.extend(found)
        if a["pc"] != b["pc"]:
            return i + 1, out
    if ref.end != END_DONE or host.end != END_DONE or len(ref.states) != len(host.states):
        pc = ref.states[n - 1]["pc"] or 0 if n else 0
        name = f"end (QEMU: {ref.end}; host: {host.end})"
        out.append(Mismatch(seed, n, pc, name, len(ref.states), len(host.states)))
    return n, out


class Differential:
    """One seed at a time; the emulated host's registry is loaded once."""

    def __init__(
        self,
        *,
        length: int = DEFAULT_LENGTH,
        build_dir: Path | None = None,
        qemu: str | None = None,
        stop_timeout: float = STOP_TIMEOUT,
        core: str = "e500mc",
    ) -> None:
        self.length = length
        self.core = core
        self.build_dir = Path(build_dir) if build_dir else cache_dir("fidelity-ppc")
        self.qemu = qemu or qemu_for(core)
        self.stop_timeout = stop_timeout
        self.emulated = EmulatedE500mc(core=core)
        self.timings = Timings()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qemu")

    def close(self) -> None:
        self._pool.shutdown()

    def check(self, seed: int) -> ProgramRun:
        t = self.timings
        t0 = time.perf_counter()
        program = generate(seed, length=self.length, core=self.core)
        elf = program.build(self.build_dir)
        layout = program.layout(elf)
        breakpoints = [*layout.ordinary, layout.done]
        t1 = time.perf_counter()
        t.build += t1 - t0
        ref_future = self._pool.submit(self._reference, elf, layout, breakpoints)
        host = self.emulated.trace(elf, layout, breakpoints, self.stop_timeout)
        t.emulated += time.perf_counter() - t1
        ref = ref_future.result()
        t2 = time.perf_counter()
        stops, mismatches = compare_traces(seed, ref, host, Explainer(layout))
        t.compare += time.perf_counter() - t2
        return ProgramRun(seed, layout, ref, host, stops, mismatches)

    def _reference(self, elf: Path, layout: Layout, breakpoints: list[int]) -> Trace:
        t0 = time.perf_counter()
        with QemuPpce500(elf, qemu=self.qemu, core=self.core) as q:
            t1 = time.perf_counter()
            trace = q.trace(layout, breakpoints, self.stop_timeout)
        self.timings.qemu_start += t1 - t0
        self.timings.qemu_trace += time.perf_counter() - t1
        return trace


def _run_seeds(
    seeds: range, length: int, build_dir: Path | None, keep: int, core: str
) -> tuple[FidelityTally, Timings]:
    tally = FidelityTally(arch_name(core), keep=keep)
    diff = Differential(length=length, build_dir=build_dir, core=core)
    t0 = time.perf_counter()
    try:
        for s in seeds:
            r = diff.check(s)
            tally.add_program(r.stops, r.mismatches)
    finally:
        diff.close()
    diff.timings.wall = time.perf_counter() - t0
    return tally, diff.timings


def run(
    programs: int,
    seed: int,
    *,
    length: int = DEFAULT_LENGTH,
    jobs: int = 1,
    build_dir: Path | None = None,
    keep: int = 20,
    timings: Timings | None = None,
    progress: Callable[[FidelityTally], None] | None = None,
    core: str = "e500mc",
) -> FidelityTally:
    """Programs ``seed`` .. ``seed + programs - 1`` for ``core``, over ``jobs`` worker processes
    (each runs QEMU and an emulated host; they are spawned, so a script calling this with
    ``jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard). ``timings``, if given,
    receives where the time went; ``progress`` is called with the running tally after each chunk."""
    if programs < 0 or jobs < 1:
        raise ValueError(f"programs must be >= 0 and jobs >= 1, not {programs}, {jobs}")
    chunk = max(1, min(50, programs // (4 * jobs) or 1))
    parts = [range(s, min(s + chunk, seed + programs)) for s in range(seed, seed + programs, chunk)]
    total = FidelityTally(arch_name(core), keep=keep)
    spent = Timings()
    t0 = time.perf_counter()
    if jobs == 1:
        results = (_run_seeds(p, length, build_dir, keep, core) for p in parts)
        for tally, t in results:
            total.merge(tally)
            spent.add(t)
            if progress:
                progress(total)
    else:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_run_seeds, p, length, build_dir, keep, core) for p in parts]
            for f in concurrent.futures.as_completed(futures):
                tally, t = f.result()
                total.merge(tally)
                spent.add(t)
                if progress:
                    progress(total)
    if timings is not None:
        timings.add(spent)
        timings.wall = time.perf_counter() - t0
    return total
