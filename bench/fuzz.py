"""Coverage-guided fuzzing (atheris, libFuzzer's engine) of the targets in
``tests/fuzz/fuzz_targets.py``: the packet parser with the stub's state machine (``rsp``), the
migration-document loader (``migration``), and the agent-expression interpreter of breakpoint
conditions (``agent_expr``).

Usage: ``python bench/fuzz.py [--runs N] [--targets a,b] [--jobs J] [--hang-seconds S]
[--seed S] [--work DIR] [--merge | --merge-only DIR]``.
Defaults: 1,000,000 inputs per target, every ready target,
two at a time (one process each, ``--jobs``), an input running over 5 s is a hang.

Each target starts from its corpus in the repository (``tests/fuzz/corpus/<target>/``, read
only) and writes what it finds under ``--work`` (a temporary folder unless given): new inputs
in ``<target>/corpus/``, each crash and hang, once per place in the code, in
``<target>/crashes/`` and ``<target>/hangs/`` (the input, and a ``.txt`` with the traceback).
A crash does not stop the run. ``--merge`` then adds to the repository corpus only the new
inputs that reach code it did not (libFuzzer's ``-merge=1``), which keeps it small;
``--merge-only DIR`` does only that, for the work folder of an earlier run.

One line per target, then as the last line the totals:
``targets=<int> inputs=<int> crashes=<int> hangs=<int>``; the exit status is 1 when either
count is not 0.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SELF = Path(__file__).resolve()
ROOT = SELF.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from fuzz_targets import TARGETS, Crash, Hang, Target  # noqa: E402

DONE = re.compile(rb"Done (\d+) runs in (\d+) second")


# -- one target, in its own process ----------------------------------------------------------


def signature(exc: BaseException) -> str:
    """Where it went wrong: the exception type and the innermost frame of the code under test
    (through ``Crash``'s cause), so one bug found by many inputs counts once."""
    inner: BaseException = exc
    while isinstance(inner, Crash) and inner.__cause__ is not None:
        inner = inner.__cause__
    frames = traceback.extract_tb(inner.__traceback__)
    ours = [f for f in frames if "/guestdbg" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    if isinstance(inner, Crash):  # a property the harness checks, not an exception: its text
        where = str(inner)[:60]
    return f"{type(inner).__name__}@{where}"


def record(folder: Path, data: bytes, exc: BaseException, seen: set[str]) -> None:
    sig = signature(exc)
    if sig in seen:
        return
    seen.add(sig)
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(sig.encode()).hexdigest()[:10]
    (folder / name).write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    (folder / f"{name}.txt").write_text(f"{sig}\n{text}")
    print(f"fuzz: {folder.name[:-1]} {sig} -> {folder / name}", file=sys.stderr, flush=True)


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def worker(target: Target, runs: int, hang_seconds: float, seed: int, work: Path) -> None:
    """Runs inside a fresh interpreter: atheris instruments ``guestdbg`` as it is imported,
    then libFuzzer calls ``one`` ``runs`` times and exits the process."""
    import logging

    import atheris

    logging.getLogger("guestdbg").propagate = False  # the harness reads what it needs
    with atheris.instrument_imports(include=list(target.instrument), exclude=list(target.skip)):
        one = [target.make()]
    out = work / target.name
    new_corpus = out / "corpus"
    new_corpus.mkdir(parents=True, exist_ok=True)
    seen_crashes: set[str] = set()
    seen_hangs: set[str] = set()
    signal.signal(signal.SIGALRM, _alarm)

    def test_one_input(data: bytes) -> None:
        signal.setitimer(signal.ITIMER_REAL, hang_seconds)
        try:
            one[0](data)
            signal.setitimer(signal.ITIMER_REAL, 0)
        except Hang as e:
            record(out / "hangs", data, e, seen_hangs)
            one[0] = target.make()  # a fresh harness: the old one may have stopped mid-update
        except Exception as e:  # Crash, or the harness's own bug: either is worth a look
            signal.setitimer(signal.ITIMER_REAL, 0)
            record(out / "crashes", data, e, seen_crashes)

    args = [
        sys.argv[0],
        f"-runs={runs}",
        f"-seed={seed}",
        "-timeout=0",  # hangs are ours (SIGALRM above); libFuzzer's alarm would race it
        f"-max_len={target.max_len}",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={out}/",  # libFuzzer's own (slow-unit-*) stay out of the tree
        str(new_corpus),
        str(target.corpus),
    ]
    atheris.Setup(args, test_one_input, custom_mutator=target_mutator(target))
    atheris.Fuzz()


def merge_worker(target: Target, work: Path, libfuzzer_args: list[str]) -> None:
    """libFuzzer's ``-merge=1``: the repository corpus gains only inputs that add coverage.

    libFuzzer merges in child processes it starts by running its own ``argv[0]`` again with
    ``-merge_inner=1`` and a control file (so a crashing input cannot end the merge). For a
    Python harness that ``argv[0]`` is :func:`merge`'s wrapper script, which comes back here
    with libFuzzer's arguments; the outer call gets none and asks for the merge."""
    import logging

    import atheris

    logging.getLogger("guestdbg").propagate = False
    with atheris.instrument_imports(include=list(target.instrument), exclude=list(target.skip)):
        one = target.make()

    def test_one_input(data: bytes) -> None:
        with contextlib.suppress(Exception):  # a crash is a regression test's business
            one(data)

    target.corpus.mkdir(parents=True, exist_ok=True)
    outer = ["-merge=1", f"-max_len={target.max_len}", str(target.corpus)]
    outer.append(str(work / target.name / "corpus"))
    atheris.Setup([str(merge_wrapper(target, work)), *(libfuzzer_args or outer)], test_one_input)
    atheris.Fuzz()


def merge_wrapper(target: Target, work: Path) -> Path:
    """An executable that runs this file's merge worker for ``target`` (see ``merge_worker``)."""
    path = work / target.name / "merge-worker"
    path.write_text(
        f"#!/bin/sh\nexec {sys.executable} {SELF} --merge-worker {target.name} "
        f'--work {work} -- "$@"\n'
    )
    path.chmod(0o755)
    return path


def target_mutator(target: Target):  # type: ignore[no-untyped-def]
    """JSON targets get a structure-aware mutation half the time (a field of the document
    replaced, dropped or duplicated, a number pushed to an edge), so the loader sees documents
    that parse; otherwise libFuzzer's own byte mutations."""
    if target.name != "migration":
        return None
    import random

    import atheris

    edges: list[object] = [0, -1, 1, 2**31, 2**32 - 1, 2**63, 2**64, -(2**63), 10**30, 1.5,
                           "", "x", "mem", "swbreak", "hwbreak", "watch", "rwatch", "awatch",
                           "booke.ivor", "60000000", None, True, False, [], {}, [{}]]  # fmt: skip

    def nodes(doc: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        out = [path]
        if isinstance(doc, dict):
            for k, v in doc.items():
                out += nodes(v, (*path, k))
        elif isinstance(doc, list):
            for i, v in enumerate(doc):
                out += nodes(v, (*path, i))
        return out

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            doc = None
        if doc is None or rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        path = rng.choice(nodes(doc))
        if not path:
            return atheris.Mutate(data, max_size)
        parent: object = doc
        for key in path[:-1]:
            parent = parent[key]  # type: ignore[index]
        key = path[-1]
        roll = rng.random()
        if roll < 0.15 and isinstance(parent, dict):
            del parent[key]
        elif roll < 0.3 and isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), json.loads(json.dumps(parent[key])))  # type: ignore[index]
        else:
            value = rng.choice(edges)
            current = parent[key]  # type: ignore[index]
            if isinstance(current, int) and not isinstance(current, bool) and rng.random() < 0.5:
                value = current + rng.choice((-1, 1, 4, -4, 2**32))
            parent[key] = value  # type: ignore[index]
        text = json.dumps(doc).encode()
        return text if len(text) <= max_size else atheris.Mutate(data, max_size)

    return mutate


# -- the driver ------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The workers run in ``--work``: relative ``PYTHONPATH`` entries are made absolute."""
    env = dict(os.environ)
    paths = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_target(
    target: Target, runs: int, hang_seconds: float, seed: int, work: Path
) -> dict[str, object]:
    started = time.monotonic()
    cmd = [sys.executable, str(SELF), "--worker", target.name, "--runs", str(runs)]
    cmd += ["--hang-seconds", str(hang_seconds), "--seed", str(seed), "--work", str(work)]
    log = work / f"{target.name}.log"
    with open(log, "wb") as f:
        proc = subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, cwd=work, env=child_env(), check=False
        )
    text = log.read_bytes()
    done = DONE.findall(text)
    out = work / target.name

    def count(kind: str) -> int:
        return len(list((out / kind).glob("*.txt"))) if (out / kind).is_dir() else 0

    result: dict[str, object] = {
        "target": target.name,
        "inputs": int(done[-1][0]) if done else 0,
        "crashes": count("crashes"),
        "hangs": count("hangs"),
        "new_corpus": len(list((out / "corpus").iterdir())) if (out / "corpus").is_dir() else 0,
        "seconds": round(time.monotonic() - started, 1),
        "exit": proc.returncode,
    }
    if proc.returncode != 0 or not done:
        result["crashes"] = int(result["crashes"]) + 1  # type: ignore[call-overload]
        result["log_tail"] = text[-2000:].decode("utf-8", "replace")
    return result


def merge(target: Target, work: Path) -> int:
    before = len(list(target.corpus.iterdir())) if target.corpus.is_dir() else 0
    log = work / f"{target.name}.merge.log"
    with open(log, "wb") as out:
        subprocess.run([str(merge_wrapper(target, work))], stdout=out, stderr=subprocess.STDOUT,
                       cwd=work, env=child_env(), check=True)  # fmt: skip
    return len(list(target.corpus.iterdir())) - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    ap.add_argument("--targets", default="", help="comma-separated (default: every ready one)")
    ap.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once")
    ap.add_argument("--hang-seconds", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's -seed (0: random)")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--merge", action="store_true", help="add what adds coverage to the corpus")
    ap.add_argument("--merge-only", type=Path, default=None,
                    help="no fuzzing: merge an earlier run's work folder")  # fmt: skip
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--merge-worker", default=None, help=argparse.SUPPRESS)
    a, rest = ap.parse_known_args()
    if a.worker:
        worker(TARGETS[a.worker], a.runs, a.hang_seconds, a.seed, a.work)
        return 0
    if a.merge_worker:
        merge_worker(TARGETS[a.merge_worker], a.work, [r for r in rest if r != "--"])
        return 0
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    names = [n for n in a.targets.split(",") if n] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    chosen = [TARGETS[n] for n in names]
    for t in chosen:
        if not t.ready:
            print(f"{t.name}: {t.status} (nothing to fuzz yet; see tests/fuzz/fuzz_targets.py)")
    ready = [t for t in chosen if t.ready]
    if a.merge_only:
        for t in ready:
            print(f"{t.name}: merged {merge(t, a.merge_only.resolve())} input(s) into "
                  f"{t.corpus.relative_to(ROOT)}")  # fmt: skip
        return 0
    work = (a.work or Path(tempfile.mkdtemp(prefix="guestdbg-fuzz-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        results = list(
            pool.map(lambda t: run_target(t, a.runs, a.hang_seconds, a.seed, work), ready)
        )
    for r in results:
        fields = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("target", "log_tail"))
        print(f"{r['target']}: {fields}")
        if "log_tail" in r:
            print(r["log_tail"])
    if a.merge:
        for t in ready:
            print(f"{t.name}: merged {merge(t, work)} input(s) into {t.corpus.relative_to(ROOT)}")
    print(f"work: {work}")
    totals = {k: sum(int(r[k]) for r in results) for k in ("inputs", "crashes", "hangs")}  # type: ignore[call-overload]
    print(
        f"targets={len(results)} inputs={totals['inputs']} "
        f"crashes={totals['crashes']} hangs={totals['hangs']}"
    )
    return 1 if totals["crashes"] or totals["hangs"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")  # the workers' set and dict orders repeat
    sys.exit(main())
