"""A slice of the seeded fuzz benchmark in the suite (``bench/agent_expr_fuzz.py``, 100,000
expressions by default): ``python bench/agent_expr_fuzz.py --count 2000 --seed 7`` finds no
crash and no hang, in a mix that reaches every outcome (refused, evaluated, failed while
running), so the slice does not pass by refusing everything."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAST = re.compile(
    r"expressions=(\d+) parsed=(\d+) refused=(\d+) evaluated=(\d+) eval_errors=(\d+) "
    r"crashes=(\d+) hangs=(\d+)"
)


def test_a_slice_of_the_fuzz_benchmark_finds_no_crash_or_hang() -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "agent_expr_fuzz.py"), "--count", "2000",
           "--seed", "7"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    m = LAST.fullmatch(last)
    assert m, out.stdout + out.stderr
    total, parsed, refused, evaluated, eval_errors, crashes, hangs = map(int, m.groups())
    assert (crashes, hangs) == (0, 0), out.stderr
    assert out.returncode == 0
    assert total == 2000 and parsed + refused == total and evaluated + eval_errors == parsed
    assert parsed >= total // 5 and refused >= total // 5
    assert evaluated >= total // 20 and eval_errors >= total // 20


def test_the_fuzz_check_catches_what_it_is_for() -> None:
    """The checker is not vacuous: validation facts that a run contradicts, or an exception
    other than ``EvalError`` out of the run, are reported (each case a real expression with one
    fact changed)."""
    import dataclasses

    import pytest
    from asm import asm
    from exprfuzz import Broken, check_parsed

    from guestdbg.conditions import parse_agent_expr

    expr = parse_agent_expr(asm("reg 0", "const16 0x1000", "ref8", "add", "end"))
    check_parsed(expr, 1)
    with pytest.raises(Broken, match="read register 0, not in the validated set"):
        check_parsed(dataclasses.replace(expr, registers=frozenset()), 1)
    with pytest.raises(Broken, match="read memory, validation said it reads none"):
        check_parsed(dataclasses.replace(expr, reads_memory=False), 1)

    def broken(*args: object) -> int:
        raise KeyError("a bug")

    with pytest.raises(Broken, match="internal error"):
        check_parsed(dataclasses.replace(expr, compiled=broken), 1)
