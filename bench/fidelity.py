"""Both emulated hosts against their independent references, on seeded random programs.

PowerPC: random e500mc programs on QEMU's ppce500 (its own CPU model, stopped by breakpoints
and ``continue``) and on the emulated e500mc host through guestdbg, compared at every stop
(``guestdbg_booke.fidelity``). x86-64: random CPL0 programs on this machine's ``/dev/kvm`` and
on the emulated x86-64 host, both single-stepped and compared after every step
(``guestdbg_x86.fidelity``). Every difference is either documented (``docs/fidelity.md``, with
its primary source) or counted as undocumented, with the program's seed and first differing
stop printed.

Usage: ``python bench/fidelity.py [--programs N] [--seed S] [--jobs J] [--arch ppc|x86|both]``.
Defaults: 2,000 programs per arch (the target: at least 200,000 compared stops per arch and
``undocumented=0``). One line per arch, the undocumented mismatches found, then as the last
line the totals: ``programs=<int> compared_stops=<int> mismatches=<int> undocumented=<int>``.
An arch whose reference is missing here (no ``qemu-system-ppc``, no usable ``/dev/kvm``) is
reported as skipped and counts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable

from guestdbg.errors import UnsupportedByArch
from guestdbg.fidelity import FidelityTally


def run_ppc(programs: int, seed: int, jobs: int) -> FidelityTally:
    if shutil.which("qemu-system-ppc") is None:
        raise UnsupportedByArch("no qemu-system-ppc (tools/bootstrap.sh installs it)")
    from guestdbg_booke.fidelity import differential

    return differential.run(programs, seed, jobs=jobs)


def run_x86(programs: int, seed: int, jobs: int) -> FidelityTally:
    from guestdbg_x86.fidelity import differential

    return differential.run(programs, seed)


ARCHES: dict[str, Callable[[int, int, int], FidelityTally]] = {"ppc": run_ppc, "x86": run_x86}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=2000, help="programs per arch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="PowerPC worker processes")
    ap.add_argument("--arch", choices=["ppc", "x86", "both"], default="both")
    args = ap.parse_args()
    total = FidelityTally("all")
    names = list(ARCHES) if args.arch == "both" else [args.arch]
    for name in names:
        t0 = time.perf_counter()
        try:
            tally = ARCHES[name](args.programs, args.seed, args.jobs)
        except UnsupportedByArch as e:
            print(f"{name}: skipped: {e}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        print(f"{name}: {tally.line()} seconds={seconds:.1f} documented={tally.by_difference}")
        for m in tally.first_undocumented:
            print(f"{name}: undocumented: {m}")
        total.merge(tally)
    print(total.line())
    return 1 if total.undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
