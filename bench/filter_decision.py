"""Time the reinjection filter's decision with 10 and with 100,000 software breakpoints.

The decision runs on every debug exit, so its cost must not grow with the number of points:
each question it asks is one dict look-up keyed by (address space, address). Also prints what
the same decision would cost if the arch's part went through pluggy dispatch on every exit,
which is why hooks are resolved once at session setup.

Last line: ``median_us_10=<float> median_us_100k=<float> ratio=<float>``.
"""

from __future__ import annotations

import statistics
import time

import pluggy

from guestdbg import hookspecs
from guestdbg.capabilities import DebugCapabilities
from guestdbg.events import DebugEvent, EventKind, Reinject, Resume
from guestdbg.filter import ReinjectionFilter
from guestdbg.numbering import ExceptionId
from guestdbg.points import DebugPoint, PointKind, PointTable

CAPS = DebugCapabilities(hw_breakpoints=2, hw_watchpoints=2, sw_break_size=4)
PROGRAM = ExceptionId("booke.ivor", 6)
BASE = 0x0010_0000


def guest_verdict(ev: DebugEvent) -> Reinject | Resume:
    return Reinject(PROGRAM, ev.pc, {"esr": 0x08000000})


def table_with(n: int) -> PointTable:
    t = PointTable(CAPS)
    for i in range(n):
        t.insert(DebugPoint(PointKind.SW_BREAK, BASE + 4 * i, 4))
    return t


def events(n: int) -> list[DebugEvent]:
    """A mix the filter sees: hits at host breakpoints spread over the table, and misses."""
    out = []
    for i in range(1000):
        hit = BASE + 4 * ((i * 7919) % n)
        addr = hit if i % 2 else 0x0800_0000 + 4 * i
        out.append(DebugEvent(EventKind.STEP_OR_SW_TRAP, addr, addr))
    return out


def time_decide(f: ReinjectionFilter, evs: list[DebugEvent], rounds: int = 200) -> float:
    """Median per-decision time in µs over ``rounds`` batches of the event mix."""
    decide = f.decide
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for ev in evs:
            decide(ev, False)
        samples.append((time.perf_counter_ns() - t0) / len(evs) / 1000)
    return statistics.median(samples)


class _Plugin:
    @hookspecs.hookimpl
    def guestdbg_arch(self) -> None:
        return None


def time_pluggy_dispatch(rounds: int = 200, n: int = 1000) -> float:
    """What one hook call costs (a plugin consulted per exit would pay it every time)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(_Plugin())
    hook = pm.hook.guestdbg_arch
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            hook()
        samples.append((time.perf_counter_ns() - t0) / n / 1000)
    return statistics.median(samples)


def main() -> None:
    # Interleave the two configurations so machine noise (other processes on 2 cores) lands on
    # both alike; each sample is one batch of 1,000 decisions.
    sizes = (10, 100_000)
    setups = {n: (ReinjectionFilter(table_with(n), guest_verdict), events(n)) for n in sizes}
    samples: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(100):
        for n in sizes:
            f, evs = setups[n]
            samples[n].append(time_decide(f, evs, rounds=3))
    results = {n: statistics.median(v) for n, v in samples.items()}
    for n in sizes:
        print(f"{n:>7} software breakpoints: median {results[n]:.3f} us per decision")
    hook = time_pluggy_dispatch()
    print(f"one pluggy hook dispatch: median {hook:.3f} us (avoided on the exit path)")
    ratio = results[100_000] / results[10]
    print(f"median_us_10={results[10]:.3f} median_us_100k={results[100_000]:.3f} ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
