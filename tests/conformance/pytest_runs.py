"""Running a porter's or a VMM's test file with a real pytest in a subprocess, as the kits'
own tests do: the environment that makes it import this tree's packages, and what its JUnit XML
report says of each test."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import guestdbg
import guestdbg_booke
import guestdbg_x86


def package_env() -> dict[str, str]:
    """``os.environ`` with the directories of the packages this suite imported first on
    PYTHONPATH: a subprocess running in a temporary directory tests this tree, not whatever an
    installed (or editable) copy elsewhere holds."""
    roots = {
        str(Path(m.__file__ or "").resolve().parents[1])
        for m in (guestdbg, guestdbg_booke, guestdbg_x86)
    }
    path = os.pathsep.join([*sorted(roots), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def junit_outcomes(report: Path, output: str) -> dict[str, tuple[str, str]]:
    """``Class::test[id]`` -> (passed | failed | skipped | error, message); ``output`` (the
    run's) is what a missing report fails with."""
    assert report.exists(), output
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
