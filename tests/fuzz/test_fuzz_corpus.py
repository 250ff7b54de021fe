"""The fuzz targets in the suite (issue 13): every input of the corpus in the repository (the
seeds, what coverage-guided runs kept, and each crash or hang found, minimised) replays clean,
a short coverage-guided run of every target finds nothing, and the regressions the fuzzing
found stay fixed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fuzz_targets import CORPUS, TARGETS, Hang

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD = 20.0
"""Seconds one input may run before the test calls it a hang (a guard, not a measurement)."""


@contextmanager
def hang_guard(seconds: float = HANG_GUARD) -> Iterator[None]:
    def alarm(signum: int, frame: object) -> None:
        raise Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


READY = [name for name, t in TARGETS.items() if t.ready]


@pytest.mark.parametrize("name", READY)
def test_every_corpus_input_replays_without_a_crash_or_hang(name: str) -> None:
    target = TARGETS[name]
    inputs = sorted(p for p in target.corpus.iterdir() if p.is_file())
    assert inputs, f"{target.corpus} is empty"
    one = target.make()
    for path in inputs:
        with hang_guard():
            one(path.read_bytes())  # raises Crash (or Hang) with what went wrong


def test_the_agent_expression_corpus_starts_from_conditions_gdb_compiles() -> None:
    """The seeds are real: each ``gdb-*`` file is a condition that parses and evaluates, so
    the coverage-guided run starts from what GDB sends, not from noise."""
    from exprfuzz import check

    seeds = sorted(TARGETS["agent_expr"].corpus.glob("gdb-*"))
    assert len(seeds) >= 10
    for path in seeds:
        assert check(path.read_bytes(), 0).parsed, path.name


def test_a_short_coverage_guided_run_of_every_target_finds_nothing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    runs = 3000
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--runs", str(runs), "--jobs", "1",
         "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    m = re.fullmatch(r"targets=(\d+) inputs=(\d+) crashes=(\d+) hangs=(\d+)", last)
    assert m, out.stdout + out.stderr
    targets, inputs, crashes, hangs = map(int, m.groups())
    assert targets == len(READY) and inputs >= runs * len(READY)
    assert (crashes, hangs) == (0, 0), out.stdout + "".join(
        p.read_text() for p in tmp_path.glob("*/*/*.txt")
    )
    assert "pending" not in out.stdout
    assert out.returncode == 0, out.stdout + out.stderr


# -- what the fuzzing found ----------------------------------------------------------------


def test_a_document_claiming_absurd_refs_is_refused_at_once() -> None:
    """Found by the migration target: restore inserted a point once per claimed reference, so
    a document claiming 2**40 of them kept the destination busy for hours. The loader now bounds
    ``refs`` (``migration.MAX_REFS``) and takes the count in one insert."""
    from fuzz_targets import migration_vm

    from guestdbg.errors import MigrationError
    from guestdbg.session import Session

    doc = json.loads((CORPUS / "migration" / "hang-refs-2pow40").read_bytes())
    assert doc["points"][0]["refs"] == 2**40
    with hang_guard(5.0), pytest.raises(MigrationError):
        Session.restore(migration_vm(), doc)  # type: ignore[arg-type]
