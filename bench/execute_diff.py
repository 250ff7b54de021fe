"""BookE ``execute_in_place`` against Unicorn's PowerPC: a million or more seeded cases, each an
accepted random instruction checked against one real single step on the emulated e500mc or
e500v2 host (``guestdbg_booke.fidelity.execute_diff``; ``docs/fidelity.md``).

Why: the tests run 36,000 cases; rare corners (a carry out of one particular operand pair, a
BO/BI combination) want many more, and each case costs a KVM_SET_REGS, a KVM_RUN and a
KVM_GET_REGS on the emulated host, so this is a benchmark rather than a test.

Usage: ``python bench/execute_diff.py [--cases N] [--seed S] [--e500v2-share F]``
(defaults: 1,000,000 cases, seed 1, a fifth of them on e500v2). Per core a line with its
counts; the mismatches (at most 20 printed); as the last line
``cases=<int> accepted=<int> refused=<int> excluded_unmapped_target=<int> mismatches=<int>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guestdbg_booke.fidelity.execute_diff import DiffTally, run  # noqa: E402

CHUNK = 100_000
"""Cases per fresh host: a seed of its own each, so one chunk reruns alone."""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--e500v2-share", type=float, default=0.2)
    args = p.parse_args()
    v2 = int(args.cases * args.e500v2_share)
    total = DiffTally()
    t0 = time.perf_counter()
    for core, count in (("e500mc", args.cases - v2), ("e500v2", v2)):
        tally = DiffTally()
        start = time.perf_counter()
        for n, first in enumerate(range(0, count, CHUNK)):
            seed = args.seed * 1000 + n
            tally.add(run(core, seed, min(CHUNK, count - first)))
        spent = time.perf_counter() - start
        print(
            f"{core}: cases={tally.cases} accepted={tally.accepted} refused={tally.refused} "
            f"excluded_unmapped_target={tally.excluded_unmapped_target} "
            f"mismatches={len(tally.mismatches)} ({spent:.1f} s)",
            flush=True,
        )
        total.add(tally)
    for m in total.mismatches[:20]:
        print(m)
    print(f"wall {time.perf_counter() - t0:.1f} s")
    print(
        f"cases={total.cases} accepted={total.accepted} refused={total.refused} "
        f"excluded_unmapped_target={total.excluded_unmapped_target} "
        f"mismatches={len(total.mismatches)}"
    )
    return 1 if total.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
