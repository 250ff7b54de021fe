"""Every code block of the README and the guides is run, checked against what runs, or output.

A guide whose example stopped working is worse than none: the reader copies it, it fails, and
they stop trusting the rest. So each fenced block carries a marker on the line before its fence:

``<!-- doc: run -->``
    Python blocks run, in document order, in one namespace per document, in a fresh interpreter
    from the repository root (so a guide can build up and nothing leaks into the suite); each
    line of a shell block runs with bash and must exit 0.
``<!-- doc: file PATH -->``
    The block appears verbatim in PATH, and PATH is something the suite runs: an example named
    in ``tests/test_examples.py``, a test module, or a module of the installed packages.
``<!-- doc: tested-by tests/FILE.py::test_name -->``
    A command that test runs (checked: the test exists and its file names the command), for
    commands too slow, or too recursive (``./test.sh``), to run twice.
``<!-- doc: ci -->``
    The command is what ``.ci/run`` runs.
``<!-- doc: output -->``
    Output, a diagram or a shape: nothing to run.

A block without a marker fails, so a new block cannot slip in unchecked. The documents are the
README, CONTRIBUTING.md and every Markdown file under ``docs/`` (the reference pages included).
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *ROOT.glob("docs/**/*.md")]
    if p.exists()
)
MARKER = re.compile(r"^\s*<!--\s*doc:\s*(?P<kind>[a-z-]+)(?:\s+(?P<arg>\S+))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
KINDS = ("run", "file", "tested-by", "ci", "output")
RUN_TIMEOUT = 240.0
PACKAGE_DIRS = ("core/", "arch_ppc_booke/", "arch_x86_ref/")


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    """1-based line of the opening fence."""
    lang: str
    text: str
    kind: str | None
    arg: str | None

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def blocks(document: str, source: str) -> list[Block]:
    """The fenced blocks of a Markdown text, each with the marker on the line before it."""
    lines = source.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^\s*{re.escape(fence)}\s*$", lines[j]):
            line = lines[j]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            j += 1
        if j == len(lines):
            raise AssertionError(f"{document}:{i + 1}: code block never closed")
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        found.append(
            Block(
                document,
                i + 1,
                m["info"].strip().split(" ")[0],
                "\n".join(body) + "\n",
                marker["kind"] if marker else None,
                marker["arg"] if marker else None,
            )
        )
        i = j + 1
    return found


def problems(block: Block) -> list[str]:
    """What is wrong with a block's marker, without running anything."""
    if block.kind is None:
        return [f"{block.where}: no <!-- doc: ... --> marker before this block ({KINDS})"]
    if block.kind not in KINDS:
        return [f"{block.where}: unknown marker kind {block.kind!r}; use one of {KINDS}"]
    if block.kind == "run" and block.lang not in ("python", "sh", "bash", "console"):
        return [f"{block.where}: cannot run a {block.lang or 'plain'} block"]
    if block.kind == "file":
        return _file_problems(block)
    if block.kind == "tested-by":
        return _tested_by_problems(block)
    if block.kind == "ci":
        ci = (ROOT / ".ci" / "run").read_text()
        missing = [c for c in _commands(block.text) if c not in ci]
        return [f"{block.where}: .ci/run does not run {c!r}" for c in missing]
    return []


def _file_problems(block: Block) -> list[str]:
    if not block.arg:
        return [f"{block.where}: 'file' needs a path"]
    path = ROOT / block.arg
    if not path.is_file():
        return [f"{block.where}: {block.arg} does not exist"]
    if block.text.strip() not in path.read_text():
        return [f"{block.where}: the block is not (any longer) in {block.arg}, verbatim"]
    run_by_suite = (
        block.arg.startswith("tests/")
        or block.arg.startswith(PACKAGE_DIRS)
        or (
            block.arg.startswith("examples/")
            and pathlib.Path(block.arg).name in (ROOT / "tests" / "test_examples.py").read_text()
        )
    )
    if not run_by_suite:
        return [f"{block.where}: nothing in the test suite runs {block.arg}"]
    return []


def _tested_by_problems(block: Block) -> list[str]:
    file, _, name = (block.arg or "").partition("::")
    path = ROOT / file
    if not name or not path.is_file():
        return [f"{block.where}: 'tested-by' needs tests/FILE.py::test_name that exists"]
    source = path.read_text()
    tests = {
        n.name
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if name not in tests:
        return [f"{block.where}: {file} has no test {name!r}"]
    unnamed = [c for c in _commands(block.text) if c.split()[0].lstrip("./") not in source]
    return [f"{block.where}: {block.arg} does not run {c!r}" for c in unnamed]


def _commands(text: str) -> list[str]:
    """The commands of a shell block: lines without their trailing comments."""
    out = []
    for line in text.splitlines():
        command = line.split(" #", 1)[0].strip()
        if command and not command.startswith("#"):
            out.append(command)
    return out


def run_document(document: str, runnable: list[Block]) -> subprocess.CompletedProcess[str]:
    """Run a document's ``run`` blocks in a fresh interpreter; the first failure names its
    block."""
    script = textwrap.dedent(
        """
        import subprocess, sys, traceback
        namespace = {"__name__": "__doc_blocks__"}
        for where, lang, text in BLOCKS:
            try:
                if lang == "python":
                    exec(compile(text, where, "exec"), namespace)
                else:
                    for line in COMMANDS[where]:
                        subprocess.run(["bash", "-c", line], check=True)
            except BaseException:
                print(f"doc block {where} failed:", file=sys.stderr)
                traceback.print_exc()
                sys.exit(1)
        """
    )
    payload = [(b.where, b.lang, b.text) for b in runnable]
    commands = {b.where: _commands(b.text) for b in runnable if b.lang != "python"}
    header = f"BLOCKS = {payload!r}\nCOMMANDS = {commands!r}\n"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-c", header + script],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_code_block_is_run_checked_or_marked_output(document: str) -> None:
    found = blocks(document, (ROOT / document).read_text())
    wrong = [p for b in found for p in problems(b)]
    assert not wrong, "\n".join(wrong)
    runnable = [b for b in found if b.kind == "run"]
    if runnable:
        out = run_document(document, runnable)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]


REFERENCE = (
    "docs/reference/README.md",
    "docs/reference/kvm-debug-abi.md",
    "docs/reference/unicorn.md",
    "docs/reference/peers.md",
    "docs/reference/this-machine-kvm.md",
)


def test_the_guides_exist_and_are_checked() -> None:
    assert {"README.md", "CONTRIBUTING.md", "docs/embedding.md", "docs/porting.md"} <= set(
        DOCUMENTS
    )
    for guide in ("docs/embedding.md", "docs/porting.md", "docs/reference/README.md"):
        assert guide in (ROOT / "README.md").read_text(), f"the README does not link {guide}"


def test_the_reference_pages_are_checked_and_every_relative_link_resolves() -> None:
    """The pages the code cites exist, are checked like every document, and link nowhere
    that is not in the repository."""
    assert set(REFERENCE) <= set(DOCUMENTS)
    index = (ROOT / "docs/reference/README.md").read_text()
    broken = []
    for page in REFERENCE[1:]:
        assert pathlib.Path(page).name in index, f"docs/reference/README.md does not list {page}"
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not ((ROOT / document).parent / target).exists():
                broken.append(f"{document}: {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)


# -- the checker can fail ----------------------------------------------------------------------

BAD = """\
# A guide

```python
print("no marker")
```

<!-- doc: file examples/does_not_exist.py -->
```python
x = 1
```

<!-- doc: ci -->
```sh
./not-what-ci-runs.sh
```

<!-- doc: tested-by tests/test_docs.py::test_that_does_not_exist -->
```sh
./demo.sh
```

<!-- doc: output -->
```text
anything
```
"""


def test_unmarked_misquoted_and_misattributed_blocks_are_reported() -> None:
    found = blocks("bad.md", BAD)
    assert [b.line for b in found] == [3, 8, 13, 18, 23]
    reported = [problems(b) for b in found]
    assert "no <!-- doc: ... --> marker" in reported[0][0]
    assert "does not exist" in reported[1][0]
    assert ".ci/run does not run './not-what-ci-runs.sh'" in reported[2][0]
    assert "has no test 'test_that_does_not_exist'" in reported[3][0]
    assert reported[4] == []


def test_a_failing_run_block_fails_and_names_itself() -> None:
    good = Block("g.md", 3, "python", "value = 6 * 7\n", "run", None)
    bad = Block("g.md", 9, "python", "assert value == 41, 'guide is stale'\n", "run", None)
    assert run_document("g.md", [good]).returncode == 0
    out = run_document("g.md", [good, bad])
    assert out.returncode == 1
    assert "doc block g.md:9 failed" in out.stderr and "guide is stale" in out.stderr
    shell = Block("g.md", 12, "sh", "true\nfalse   # the second line fails\n", "run", None)
    assert run_document("g.md", [shell]).returncode == 1


def test_block_text_keeps_its_indentation_and_list_indentation_is_removed() -> None:
    doc = (
        "<!-- doc: run -->\n```python\nif True:\n    x = 1\n```\n\n"
        "- item\n  <!-- doc: output -->\n  ```text\n    shape\n  ```\n"
    )
    top, nested = blocks("i.md", doc)
    assert top.text == "if True:\n    x = 1\n"
    assert (nested.kind, nested.text) == ("output", "  shape\n")
