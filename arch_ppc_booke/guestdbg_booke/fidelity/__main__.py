"""Rerun seeds of the differential: ``python -m guestdbg_booke.fidelity SEED [SEED...]``
(``--core e5500`` or ``e6500`` for the 64-bit programs against ``qemu-system-ppc64``).

Prints, per seed, the program's source file, how many stops both sides made and every
mismatch (documented ones marked with their key); exit status 1 if any is undocumented.
"""

from __future__ import annotations

import argparse
import sys

from .differential import Differential
from .generator import CORES, DEFAULT_LENGTH


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m guestdbg_booke.fidelity", description=__doc__)
    ap.add_argument("seeds", nargs="+", type=int)
    ap.add_argument("--length", type=int, default=DEFAULT_LENGTH)
    ap.add_argument("--all", action="store_true", help="print documented mismatches too")
    ap.add_argument("--core", choices=CORES, default="e500mc")
    args = ap.parse_args(argv)
    diff = Differential(length=args.length, core=args.core)
    bad = 0
    try:
        for seed in args.seeds:
            r = diff.check(seed)
            undocumented = [m for m in r.mismatches if m.explained_by is None]
            bad += len(undocumented)
            print(f"seed {seed}: {r.stops} stops compared ({r.reference.end} / {r.host.end}), "
                  f"{len(r.mismatches)} mismatches, {len(undocumented)} undocumented; "
                  f"source in {diff.build_dir}")  # fmt: skip
            for m in r.mismatches if args.all else undocumented:
                print(f"  {m}")
    finally:
        diff.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
