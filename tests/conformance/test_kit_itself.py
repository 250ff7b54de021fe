"""The kit fails a plugin that breaks the contract, and loads the ways a porter uses it.

Each scenario is a porter's test file run by a real pytest in a subprocess (JUnit XML says
which test passed or failed and why): deliberately broken plugins (an x86 ``guest_verdict``
naming the wrong vector, an x86 ``encode_guest_debug`` that drops a point, a BookE
``guest_verdict`` that re-injects a stale IAC match the plugin documents as dropped), an arch
no plugin announces, the two-line subclass with and without the plugin line, and the plugin's
fixtures in a porter's own test. The two runs go in parallel, one with ``-p guestdbg.testing``
and one without any plugin line, so that neither can lean on the other.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

BROKEN = '''
from guestdbg.events import Reinject
from guestdbg.hookspecs import hookimpl
from guestdbg.testing import ArchConformance
from guestdbg_x86 import numbering
from guestdbg_x86.debugops import X86VcpuDebug
from guestdbg_booke import numbering as booke_numbering
from guestdbg_booke.debugops import BookeVcpuDebug


class WrongVector(X86VcpuDebug):
    """Re-injects every guest event as #DB: the guest's own int3 must be #BP."""

    def guest_verdict(self, ev):
        v = super().guest_verdict(ev)
        return Reinject(numbering.DB, v.pc, v.payload) if isinstance(v, Reinject) else v


class DropsAPoint(X86VcpuDebug):
    """Leaves the first hardware point out of kvm_guest_debug."""

    def encode_guest_debug(self, hw_points, step, sw_breaks):
        return super().encode_guest_debug(list(hw_points)[1:], step, sw_breaks)


class ReinjectsStale(BookeVcpuDebug):
    """Hands every unclaimed IAC/DAC match to the guest as a debug interrupt."""

    def stale(self, ev):
        return Reinject(booke_numbering.DEBUG, ev.pc, {})

    def guest_verdict(self, ev):
        v = super().guest_verdict(ev)
        return v if isinstance(v, Reinject) else self.stale(ev)


class Binds:
    def __init__(self, ops, arch="x86"):
        self.ops = ops
        self.arch = arch

    @hookimpl(tryfirst=True)
    def guestdbg_vcpu_debug(self, request):
        return self.ops(request) if request.arch.name == self.arch else None


class TestWrongVector(ArchConformance):
    arch = "x86"
    extra_plugins = (Binds(WrongVector),)


class TestDropsAPoint(ArchConformance):
    arch = "x86"
    extra_plugins = (Binds(DropsAPoint),)
    stop_timeout = 1.0


class TestReinjectsAStaleMatch(ArchConformance):
    arch = "ppc_booke"
    extra_plugins = (Binds(ReinjectsStale, "ppc_booke"),)


class TestUnannounced(ArchConformance):
    arch = "toy"
'''

TWO_LINES = """
from guestdbg.testing import ArchConformance


class TestX86(ArchConformance):
    arch = "x86"
"""

WITH_PLUGIN_LINE = """
from guestdbg.testing import ArchConformance

pytest_plugins = ["guestdbg.testing"]


class TestX86WithPluginLine(ArchConformance):
    arch = "x86"
"""

OWN_TEST = """
from guestdbg.events import StopKind
from guestdbg.events import ResumeAction
from guestdbg.points import DebugPoint, PointKind

guestdbg_arch = "x86"


def test_porters_own_test_gets_a_profile_and_a_session(conformance_profile, conformance_session):
    addr = conformance_profile.code_addrs[0]
    conformance_session.insert_point(DebugPoint(PointKind.HW_BREAK, addr))
    conformance_session.resume({0: ResumeAction()})
    ev = conformance_session.wait_stop(10)
    assert (ev.reason.kind, ev.reason.pc) == (StopKind.HW_BREAK, addr)
"""

SELECTED = "named_exceptions or guest_events_are or hwbreak or unknown_core or porters_own"


def _start(tmp: Path, files: dict[str, str], *options: str) -> subprocess.Popen[str]:
    tmp.mkdir()
    for name, text in files.items():
        (tmp / name).write_text(textwrap.dedent(text))
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options]
    args += ["-k", SELECTED, f"--junitxml={tmp / 'report.xml'}", "--rootdir", str(tmp), str(tmp)]
    return subprocess.Popen(
        args, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _outcomes(tmp: Path, proc: subprocess.Popen[str]) -> dict[str, tuple[str, str]]:
    """``Class::test[id]`` -> (passed | failed | skipped | error, message)."""
    out, _ = proc.communicate(timeout=300)
    report = tmp / "report.xml"
    assert report.exists(), out
    result = {}
    for case in ET.parse(report).iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or "") + (child.text or "")
        result[f"{cls}::{case.get('name')}"] = (outcome, message)
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    base = tmp_path_factory.mktemp("kit")
    plain = base / "plain"
    plugged = base / "plugged"
    procs = [
        (plain, _start(plain, {"test_broken.py": BROKEN, "test_two_lines.py": TWO_LINES})),
        (
            plugged,
            _start(
                plugged,
                {"test_plugin_line.py": WITH_PLUGIN_LINE, "test_own.py": OWN_TEST},
                "-p",
                "guestdbg.testing",
            ),
        ),
    ]
    result: dict[str, tuple[str, str]] = {}
    for tmp, proc in procs:
        result |= _outcomes(tmp, proc)
    return result


def test_a_verdict_naming_the_wrong_exception_fails_the_reinjection_test(
    runs: dict[str, tuple[str, str]],
) -> None:
    outcome, message = runs[
        "TestWrongVector::test_guest_events_are_reinjected_as_documented_and_host_points_claim_them"
        "[x86_64]"
    ]
    assert outcome == "failed"
    assert "the guest's own int3: re-injects x86.vector:#DB" in message
    assert runs["TestWrongVector::test_named_exceptions_convert_losslessly_or_raise_no_mapping"
                "[x86_64]"][0] == "passed"  # fmt: skip


def test_reinjecting_an_event_documented_as_dropped_fails_the_reinjection_test(
    runs: dict[str, tuple[str, str]],
) -> None:
    for core in ("e500mc", "e500v2"):
        outcome, message = runs[
            "TestReinjectsAStaleMatch::"
            f"test_guest_events_are_reinjected_as_documented_and_host_points_claim_them[{core}]"
        ]
        assert outcome == "failed", (core, message)
        assert "documented as dropped, but decoded as hw_break" in message, message
        assert "Reinject(exception=ExceptionId(space='booke.ivor', number=15)" in message


def test_an_encode_that_drops_a_point_fails_its_round_trip(
    runs: dict[str, tuple[str, str]],
) -> None:
    name = "TestDropsAPoint::test_point_stops_the_guest_and_after_removal_no_longer_does"
    outcome, message = runs[f"{name}[x86_64-hwbreak/1]"]
    assert outcome == "failed"
    assert "no stop within 1.0s" in message


def test_an_arch_nobody_announces_fails_saying_so(runs: dict[str, tuple[str, str]]) -> None:
    outcome, message = runs[
        "TestUnannounced::test_unknown_core_is_refused_with_unknown_arch[arch-not-announced]"
    ]
    assert outcome == "error" or outcome == "failed"
    assert "no plugin announces arch 'toy'" in message


def test_the_two_line_subclass_passes_with_and_without_the_plugin(
    runs: dict[str, tuple[str, str]],
) -> None:
    for cls in ("TestX86", "TestX86WithPluginLine"):
        mine = {k: v for k, v in runs.items() if k.startswith(f"{cls}::")}
        assert len(mine) == 4, mine  # named exceptions, unknown core, reinjection, hwbreak/1
        assert {v[0] for v in mine.values()} == {"passed"}, mine


def test_the_base_class_is_never_collected(runs: dict[str, tuple[str, str]]) -> None:
    assert not [k for k in runs if k.startswith("ArchConformance::")]


def test_the_plugin_gives_a_porters_own_test_its_fixtures(
    runs: dict[str, tuple[str, str]],
) -> None:
    key = "test_own::test_porters_own_test_gets_a_profile_and_a_session"
    assert runs[key][0] == "passed", runs[key]


def test_importing_guestdbg_and_running_a_session_never_imports_pytest() -> None:
    code = (
        "import sys, guestdbg, guestdbg.session, guestdbg.gdb.server\n"
        "from guestdbg import plugins\n"
        "reg = plugins.load()\n"
        "for info in reg.arches.values():\n"
        "    for core in info.cores:\n"
        "        reg.gdb_arch(info, core)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
