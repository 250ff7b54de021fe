"""Seeded fuzzing of the agent-expression interpreter: random and mutated expressions through
parse and evaluate, each checked against the rules for bad input.

The expressions (``tests/conditions/exprfuzz.py``): the conditions GDB compiles, random bytes,
random programs built the way GDB builds them (edges for operands, loops, refused opcodes,
missing ``end`` now and then) and mutations of all of these. Each must parse or be refused with
``BadExpression``, and a parsed one must evaluate to a 64-bit value or fail with ``EvalError``,
reading only what validation said through its callbacks, never outside guest RAM, never
changing it (``exprfuzz.check`` has the full list). An expression still running after
``--hang-seconds`` is a hang.

Usage: ``python bench/agent_expr_fuzz.py [--count N] [--seed S] [--hang-seconds T]``
(defaults 100,000, 1, 5). Each broken rule and hang is printed to stderr with the expression in
hex. The last line is ``expressions=<int> parsed=<int> refused=<int> evaluated=<int>
eval_errors=<int> crashes=<int> hangs=<int>``; the exit status is 1 when crashes or hangs is
not 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "conditions"))

from exprfuzz import check, expressions


class Hang(BaseException):
    """Raised by the alarm (a BaseException: the code under test's ``except Exception`` must
    not swallow it)."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def run(count: int, seed: int, hang_seconds: float) -> dict[str, int]:
    totals = dict.fromkeys(
        ("expressions", "parsed", "refused", "evaluated", "eval_errors", "crashes", "hangs"), 0
    )
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i, code in enumerate(expressions(seed, count)):
            totals["expressions"] += 1
            signal.setitimer(signal.ITIMER_REAL, hang_seconds)
            try:
                out = check(code, seed * 1_000_003 + i)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except Hang:
                totals["hangs"] += 1
                print(f"hang: {code.hex()}", file=sys.stderr)
                continue
            except Exception as e:  # exprfuzz.Broken, or anything the harness did not expect
                signal.setitimer(signal.ITIMER_REAL, 0)
                totals["crashes"] += 1
                print(f"crash: {code.hex()}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            totals["parsed"] += out.parsed
            totals["refused"] += not out.parsed
            totals["evaluated"] += out.evaluated
            totals["eval_errors"] += out.eval_error
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return totals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hang-seconds", type=float, default=5.0)
    a = ap.parse_args()
    started = time.monotonic()
    totals = run(a.count, a.seed, a.hang_seconds)
    seconds = time.monotonic() - started
    print(f"seed {a.seed}: {totals['expressions']} expressions in {seconds:.1f} s")
    print(" ".join(f"{k}={v}" for k, v in totals.items()))
    return 1 if totals["crashes"] or totals["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
