"""A core whose profile is unavailable here is skipped by the kit with the plugin's reason.

A plugin may list a core whose emulated host is another package (BookE's e5500 and e6500 hosts
come from their own branch). Its ``guestdbg_conformance`` then raises ``ProfileUnavailable``:
the kit must skip that core's checks that need a VM, with the message, and still run the checks
that need none, as a porter's pytest shows (a real pytest in a subprocess, JUnit XML read back).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .pytest_runs import junit_outcomes, package_env

PORTER = """
from guestdbg.hookspecs import hookimpl
from guestdbg.testing import ArchConformance, ProfileUnavailable


class NoHostHere:
    @hookimpl(tryfirst=True)
    def guestdbg_conformance(self, arch, core):
        if arch.name == "x86":
            raise ProfileUnavailable("the x86 host package is not installed")
        return None


class TestX86WithoutItsHost(ArchConformance):
    arch = "x86"
    extra_plugins = (NoHostHere(),)
"""


def test_the_kit_skips_a_cores_vm_checks_with_the_plugins_reason_and_runs_the_rest(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_porter.py").write_text(textwrap.dedent(PORTER))
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    args += ["-k", "announced or unknown_core or reinjected or round_trip or hwbreak"]
    args += [f"--junitxml={tmp_path / 'report.xml'}", "--rootdir", str(tmp_path), str(tmp_path)]
    done = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=package_env()
    )
    runs = junit_outcomes(tmp_path / "report.xml", done.stdout + done.stderr)
    cls = "TestX86WithoutItsHost::"
    assert runs[f"{cls}test_arch_is_announced_through_the_entry_point_group[x86_64]"] == (
        "passed",
        "",
    )
    assert runs[f"{cls}test_unknown_core_is_refused_with_unknown_arch[x86_64]"][0] == "passed"
    skipped = {name: msg for name, (outcome, msg) in runs.items() if outcome == "skipped"}
    assert any("guest_events_are_reinjected" in name for name in skipped), runs
    assert skipped and all(
        "no profile for core 'x86_64' here: the x86 host package is not installed" in msg
        for msg in skipped.values()
    ), skipped
    assert not [n for n, (outcome, _) in runs.items() if outcome in ("failed", "error")], runs
