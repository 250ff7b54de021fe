"""The repository explains itself: no file points at a document that is not in it.

The facts the code relies on are written down in ``docs/reference/`` (CONTRIBUTING.md). Notes
kept outside the repository (a research "fact sheet", a "peers note", files next to the checkout)
are gone for every user and future maintainer, so naming one is an error. A reference-page name
is fine where it is written as a path that resolves inside the repository
(``docs/reference/kvm-debug-abi.md``, or a relative link from a page beside it); the same
name bare, or the name of a page that does not exist here, points outside.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
THIS = pathlib.Path(__file__).resolve().relative_to(ROOT).as_posix()

OUTSIDE_PHRASES = re.compile(
    r"\.\./shared\b|shared/reference|fact[ -]sheet|peers note|peers §|unicorn note"
    r"|\bthe brief\b|report note",
    re.IGNORECASE,
)
"""Ways the code used to cite notes that never were in the repository."""

PAGE_NAMES = re.compile(
    r"[\w./-]*?\b(?:kvm-debug-abi|kvm-guest-debug-abi|unicorn-as-emulated-host|real-kvm-on-this-machine"
    r"|peers-and-user-asks)\.md"
)
"""The outside notes by file name, and ``kvm-debug-abi.md``, the page of ``docs/reference/`` that
holds what the outside ``kvm-guest-debug-abi.md`` held (named apart so that no reader can take
one for the other): it is fine only as a path that resolves here."""

PENDING: dict[str, str] = {}
"""Files being rewritten elsewhere at the time of writing, which still cite outside notes; their
owners repoint them at ``docs/reference/`` (and remove them from here)."""


def tracked_files() -> list[str]:
    """The repository's files: git's list in a checkout, otherwise every file but caches."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        )
        return [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
        return [
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]


def outside_references(path: str, text: str) -> list[str]:
    """``path:line: what`` for every reference to a document outside the repository."""
    found = []
    here = (ROOT / path).parent
    for number, line in enumerate(text.splitlines(), 1):
        for m in OUTSIDE_PHRASES.finditer(line):
            found.append(f"{path}:{number}: {m.group(0)!r}")
        for m in PAGE_NAMES.finditer(line):
            candidates = (ROOT / m.group(0), here / m.group(0))
            inside = any(
                c.resolve().is_file() and c.resolve().is_relative_to(ROOT) for c in candidates
            )
            if not inside:
                found.append(f"{path}:{number}: {m.group(0)!r}")
    return found


def references(files: list[str]) -> list[str]:
    found = []
    for path in files:
        if path == THIS:
            continue
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: nothing a reader follows
        found += outside_references(path, text)
    return found


def test_no_file_outside_the_pending_list_cites_an_outside_document() -> None:
    found = [r for r in references(tracked_files()) if r.split(":", 1)[0] not in PENDING]
    assert not found, "cite docs/reference/ instead:\n" + "\n".join(found)


def test_no_file_cites_an_outside_document() -> None:
    found = references(tracked_files())
    assert not found, "cite docs/reference/ instead:\n" + "\n".join(found)


def test_the_pending_files_exist() -> None:
    """A pending file that was moved or deleted must leave the list, so it cannot hide another."""
    files = set(tracked_files())
    assert not [p for p in PENDING if p not in files]


def test_the_checker_tells_inside_from_outside() -> None:
    sample = "\n".join(
        [
            "see docs/reference/kvm-debug-abi.md §3.4",  # inside
            "see kvm-debug-abi.md §3.4",  # bare: not a path that resolves from here
            "(fact sheet §3.1) and (peers note §5.16) and peers §1.5",
            "Reference facts: `../shared/reference/` in the workplace",
            "unicorn-as-emulated-host.md §7 and real-kvm-on-this-machine.md",
            "docs/reference/peers-and-user-asks.md",  # no such page here
        ]
    )
    found = outside_references("core/guestdbg/example.py", sample)
    lines = [int(r.split(":")[1]) for r in found]
    assert 1 not in lines
    assert lines.count(2) == 1
    assert lines.count(3) == 3
    assert lines.count(4) >= 1
    assert lines.count(5) == 2
    assert lines.count(6) == 1
    page = "docs/reference/README.md"
    assert outside_references(page, "[ABI](kvm-debug-abi.md)") == []
    assert outside_references(page, "[ABI](kvm-guest-debug-abi.md)") != []  # the outside name
