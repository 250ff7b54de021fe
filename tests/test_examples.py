"""The embedding examples in examples/ run as a VMM author would run them, and say what they did.

Each example is a subprocess (with a timeout); the assertions read its transcript: the exits the
VMM saw, the verdicts guestdbg returned, and what real gdb-multiarch printed. Addresses are
never restated here: an exit's PC is compared with where GDB (reading the guest's ELF) put the
same breakpoint, so the VMM's loop and the debugger must agree. The x86 example
(``python3 examples/kvm_x86_vmm.py --gdb-selftest``) needs this machine's /dev/kvm and is
skipped with the reason when it is unusable. The examples' shared modules run with them:
vmm_debug_loop.py (the VMM's own run loop), e500mc_common.py (guest build, device model) and
serve_gdb.py (gdb-multiarch in batch).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guestdbg.kvm.device import machine_kvm_arch, unusable_reason
from guestdbg.plugins import default_registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 120
EXIT_SKIPPED = 77
NEEDS_GDB = pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch")


def run_example(name: str, *args: str) -> tuple[int, list[str]]:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out.returncode, out.stdout.splitlines()


def matching(lines: list[str], pattern: str) -> list[re.Match[str]]:
    return [m for line in lines if (m := re.search(pattern, line))]


def hex_of(m: re.Match[str]) -> int:
    return int(m.group(1), 16)


def x86_kvm_unusable() -> str | None:
    if machine_kvm_arch() != "x86_64":
        return f"the x86 example needs an x86-64 /dev/kvm; this machine is {machine_kvm_arch()}"
    return unusable_reason(default_registry().arches["x86"].layout())


@pytest.mark.realkvm
@pytest.mark.gdb
@NEEDS_GDB
def test_x86_vmm_hands_debug_exits_to_guestdbg_and_serves_gdb_on_real_kvm() -> None:
    reason = x86_kvm_unusable()
    if reason is not None:
        pytest.skip(reason)
    rc, lines = run_example("kvm_x86_vmm.py", "--gdb-selftest")
    text = "\n".join(lines)
    assert rc == 0 and lines[-1] == "OK", text
    # Part 1, the VMM's own loop: the execute breakpoint twice, reported; steps reported.
    hits = matching(lines, r"KVM_EXIT_DEBUG\s+event hw_break @(0x[0-9a-f]+)\s+-> Report hwbreak")
    gdb_bp = matching(lines, r"gdb\| Hardware assisted breakpoint 1 at (0x[0-9a-f]+)")
    assert len(hits) == 2 and len(gdb_bp) == 1, text
    assert {hex_of(m) for m in hits} == {hex_of(gdb_bp[0])}
    steps = matching(lines, r"KVM_EXIT_DEBUG\s+event step @(0x[0-9a-f]+)\s+-> Report step")
    assert len(steps) == 3, text
    assert all(hex_of(m) > hex_of(gdb_bp[0]) for m in steps)
    # The device model saw every round's console byte, in both parts.
    console = [int(m.group(1), 16) for m in matching(lines, r"port 0xe9 <- (0x[0-9a-f]+)")]
    assert console == [0x11, 0x22, 0x33] * 2, text
    # Part 2, real GDB through the stub: two hits at the same address, a stepi off it, detach.
    gdb_hits = matching(lines, r"gdb\| Breakpoint 1, (0x[0-9a-f]+) in bp_target")
    assert [hex_of(m) for m in gdb_hits] == [hex_of(gdb_bp[0])] * 2, text
    rips = [hex_of(m) for m in matching(lines, r"gdb\| rip\s+(0x[0-9a-f]+)")]
    assert rips[1] == hex_of(gdb_bp[0]) and rips[0] > rips[1], text
    assert any("detached" in line for line in lines), text
    assert matching(lines, r"guestdbg filter: reported=3 .*'hwbreak': 2"), text


@pytest.mark.gdb
@NEEDS_GDB
def test_e500mc_vmm_reinjects_the_guests_own_breakpoint_and_serves_gdb() -> None:
    rc, lines = run_example("emulated_e500mc_vmm.py", "--gdb-selftest")
    text = "\n".join(lines)
    assert rc == 0 and lines[-1] == "OK", text
    reported = [
        m.group(1) for m in matching(lines, r"KVM_EXIT_DEBUG .*-> Report (\w+)  -> VMM stops")
    ]
    assert reported == ["hwbreak", "swbreak", "watch", "hwbreak"], text
    own_steps = matching(lines, r"-> Report step  -> the VMM's own step over the point")
    assert len(own_steps) == 4, text
    reinject = matching(lines, r"event step_or_sw_trap @(0x[0-9a-f]+)\s+-> Reinject booke\.ivor:6 ")
    assert len(reinject) == 1, text
    assert "handled=1" in text  # the guest's handler ran once for round 1 in the VMM's loop
    assert matching(lines, r"done \(handled=3\)"), text
    # Real GDB: hbreak, break, watch 0 -> 1, hbreak again; handled 1 then 3; detached.
    gdb_stops = [m.group(1) for m in matching(lines, r"gdb\| (Breakpoint \d+, |Old value = \d+)")]
    assert gdb_stops == ["Breakpoint 1, ", "Breakpoint 2, ", "Old value = 0", "Breakpoint 1, "], (
        text
    )
    assert [m.group(1) for m in matching(lines, r"gdb\| \$\d+ = (\d+)")] == ["1", "3", "3"], text
    assert matching(lines, r"guestdbg filter: reported=\d+ reinjected=1 step_overs"), text


@pytest.mark.gdb
@NEEDS_GDB
@pytest.mark.parametrize("host", ["emulated-e500mc", "emulated-x86", "kvm"])
def test_a_vmm_keeping_its_own_threads_is_debugged_while_its_guest_runs(host: str) -> None:
    """GDB attaches while the VMM's own threads run the 2-vCPU guest, stops it at a hardware
    breakpoint (both vCPUs listed, all-stop), steps, reads the counters, detaches; the guest
    counts on. On this machine's /dev/kvm too (skipped with the reason where unusable)."""
    if host == "kvm" and (reason := x86_kvm_unusable()) is not None:
        pytest.skip(reason)
    rc, lines = run_example("vmm_threads.py", "--host", host, "--gdb-selftest")
    text = "\n".join(lines)
    assert rc == 0 and lines[-1] == "OK", text
    assert matching(lines, r"gdb\|\s+2\s+Thread 2 \(vCPU 1 .*stopped\)"), text
    before = [int(n) for n in re.findall(r"\d+", lines[0].split("counts")[1])]
    after = [int(n) for n in re.findall(r"\d+", lines[-2].split("counts on:")[1])]
    assert all(b > a for a, b in zip(before, after, strict=True)), text
    assert matching(lines, r"gdb\| \[Inferior 1 \(Remote target\) detached\]"), text


def test_migration_carries_points_trap_words_and_the_pending_reinjection_once() -> None:
    rc, lines = run_example("migration.py")
    text = "\n".join(lines)
    assert rc == 0 and lines[-1] == "OK", text
    stops = [m.group(1) for m in matching(lines, r"^  stop: (\w+) @")]
    assert stops == ["swbreak", "watch", "guest_event", "swbreak", "watch"], text
    pending = matching(lines, r"pending reinjection: booke\.ivor:6 @(0x[0-9a-f]+)")
    caught = matching(lines, r"stop: guest_event @(0x[0-9a-f]+)")
    assert len(pending) == 1 and hex_of(pending[0]) == hex_of(caught[0]), text
    assert matching(lines, r"point swbreak .* trap word at gpa 0x[0-9a-f]+ replaced [0-9a-f]{8}")
    assert "handled=1 (the guest's handler ran once, on the destination)" in text
    assert "handled=3 after 3 rounds" in text


def test_a_bad_gdb_address_is_one_line_and_a_failure_status() -> None:
    rc, lines = run_example("emulated_e500mc_vmm.py", "--unix", "/nonexistent-dir/gdb.sock")
    assert rc == 1, lines
    assert lines[-1].startswith("FAILED: cannot listen on /nonexistent-dir/gdb.sock"), lines


def test_examples_do_not_import_from_the_test_suite() -> None:
    for source in EXAMPLES.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                assert not any(n.split(".")[0] in ("tests", "guests") for n in names), source


def test_x86_example_without_a_usable_kvm_device_says_why_and_exits_77() -> None:
    rc, lines = run_example("kvm_x86_vmm.py", "--device", "/nonexistent/kvm")
    assert rc == EXIT_SKIPPED, lines
    assert len(lines) == 1 and lines[0].startswith("SKIPPED: "), lines
    if machine_kvm_arch() == "x86_64":
        assert "/nonexistent/kvm does not exist" in lines[0]


def test_examples_are_mypy_strict_clean() -> None:
    """The project's mypy run covers the packages; the examples are code VMM authors copy, so
    they are held to the same strictness (their sibling modules found through MYPYPATH; what
    they import is the project mypy run's business, so its errors are not reported here)."""
    env = {**os.environ, "MYPYPATH": str(EXAMPLES)}
    files = sorted(str(p) for p in EXAMPLES.glob("*.py"))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", *files],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=TIMEOUT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
