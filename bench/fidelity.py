"""Both emulated hosts against their independent references, on seeded random programs.

PowerPC: random e500mc programs on QEMU's ppce500 (its own CPU model, stopped by breakpoints
and ``continue``) and on the emulated e500mc host through guestdbg, compared at every stop
(``guestdbg_booke.fidelity``); the same for the 64-bit e5500 and e6500 (64-bit programs,
``qemu-system-ppc64``). x86-64: random CPL0 programs on this machine's ``/dev/kvm`` and
on the emulated x86-64 host, both single-stepped and compared after every step
(``guestdbg_x86.fidelity``). Every difference is either documented (``docs/fidelity.md``, with
its primary source) or counted as undocumented, with the program's seed and first differing
stop printed.

Usage: ``python bench/fidelity.py [--programs N] [--seed S] [--jobs J] [--arch ARCH]``, ARCH one
of ``ppc`` (e500mc), ``e5500``, ``e6500``, ``ppc64`` (both 64-bit cores), ``x86``, ``both`` (ppc
and x86, the default) or ``all``. Defaults: 2,000 programs per arch (the target: at least
200,000 compared stops per arch and ``undocumented=0``). Per arch a line with its tally, a line
saying where its time went (PowerPC: starting a fresh QEMU per program, tracing it, the emulated
host's run including a fresh VM per program, building, comparing), the undocumented mismatches
found; then as the last line the totals:
``programs=<int> compared_stops=<int> mismatches=<int> undocumented=<int>``.
An arch whose reference is missing here (no ``qemu-system-ppc`` or ``qemu-system-ppc64``, no
usable ``/dev/kvm``) is reported as skipped and counts nothing.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import time
from collections.abc import Callable

from guestdbg.errors import UnsupportedByArch
from guestdbg.fidelity import FidelityTally


def run_ppc(programs: int, seed: int, jobs: int, core: str = "e500mc") -> tuple[FidelityTally, str]:
    from guestdbg_booke.fidelity import differential
    from guestdbg_booke.fidelity.qemu_oracle import qemu_for

    if shutil.which(qemu_for(core)) is None:
        raise UnsupportedByArch(f"no {qemu_for(core)} (tools/bootstrap.sh installs it)")
    spent = differential.Timings()
    tally = differential.run(programs, seed, jobs=jobs, timings=spent, core=core)
    per = 1000 / max(tally.programs, 1)
    parts = ("qemu_start", "qemu_trace", "emulated", "build", "compare")
    where = " ".join(f"{name}={getattr(spent, name) * per:.0f}ms" for name in parts)
    return tally, f"per program, summed over the workers: {where}"


def run_x86(programs: int, seed: int, jobs: int) -> tuple[FidelityTally, str]:
    from guestdbg_x86.fidelity import differential

    spent = differential.Timing()
    tally = differential.run(programs, seed, timing=spent)
    return tally, f"where the time went: {spent.line()}"


ARCHES: dict[str, Callable[[int, int, int], tuple[FidelityTally, str]]] = {
    "ppc": run_ppc,
    "e5500": functools.partial(run_ppc, core="e5500"),
    "e6500": functools.partial(run_ppc, core="e6500"),
    "x86": run_x86,
}
GROUPS = {"both": ["ppc", "x86"], "ppc64": ["e5500", "e6500"], "all": list(ARCHES)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=2000, help="programs per arch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="PowerPC worker processes")
    ap.add_argument("--arch", choices=[*ARCHES, *GROUPS], default="both")
    args = ap.parse_args()
    total = FidelityTally("all")
    names = GROUPS.get(args.arch, [args.arch])
    for name in names:
        t0 = time.perf_counter()
        try:
            tally, where = ARCHES[name](args.programs, args.seed, args.jobs)
        except UnsupportedByArch as e:
            print(f"{name}: skipped: {e}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        print(f"{name}: {tally.line()} seconds={seconds:.1f} documented={tally.by_difference}")
        print(f"{name}: {where}")
        for m in tally.first_undocumented:
            print(f"{name}: undocumented: {m}")
        total.merge(tally)
    print(total.line())
    return 1 if total.undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
