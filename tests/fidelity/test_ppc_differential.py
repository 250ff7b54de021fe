"""The differential against QEMU: a seeded slice of random programs on every suite run, and
proof that the comparison can fail (a planted host bug is caught with its seed and stop)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from guestdbg.fidelity import Mismatch
from guestdbg_booke import regs
from guestdbg_booke.emuhost.kvm_exit import VcpuRunner
from guestdbg_booke.fidelity import mix
from guestdbg_booke.fidelity.differential import Differential, compare_traces, run
from guestdbg_booke.fidelity.known import HV_MSR_GS_DE
from guestdbg_booke.fidelity.trace import END_DONE, Trace

from .ppc_support import BUILD, CORES64, ROOT, built, no_qemu, no_qemu64

PACKAGES = ("core", "arch_ppc_booke", "arch_x86_ref")

SLICE_SEED = 120_000
SLICE = 50
SLICE64 = 6
"""Per 64-bit core: a handful (bench/fidelity.py --arch ppc64 runs the hundreds)."""


@pytest.mark.qemu
@no_qemu
def test_a_seeded_slice_of_50_programs_differs_from_qemu_only_where_documented() -> None:
    tally = run(SLICE, SLICE_SEED, build_dir=BUILD)
    shown = "\n".join(str(m) for m in tally.first_undocumented)
    assert tally.undocumented == 0, f"{tally.line()}; first undocumented:\n{shown}"
    assert tally.programs == SLICE and tally.compared_stops > 50 * SLICE
    assert tally.by_difference.get(HV_MSR_GS_DE.key, 0) > 0  # the comparison saw the MSR


@pytest.mark.qemu
@no_qemu64
@pytest.mark.parametrize("core", CORES64)
def test_a_seeded_slice_of_64_bit_programs_differs_from_qemu_ppc64_only_where_documented(
    core: str,
) -> None:
    tally = run(SLICE64, SLICE_SEED, build_dir=BUILD, core=core)
    shown = "\n".join(str(m) for m in tally.first_undocumented)
    assert tally.undocumented == 0, f"{core}: {tally.line()}; first undocumented:\n{shown}"
    assert tally.programs == SLICE64 and tally.compared_stops > 50 * SLICE64
    assert tally.by_difference.get(HV_MSR_GS_DE.key, 0) > 0


@pytest.mark.qemu
@no_qemu
def test_a_host_that_gives_a_trap_the_wrong_esr_is_caught_with_seed_and_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = next(s for s in range(100) if mix.TRAP in built(s)[2].kinds.values())
    monkeypatch.setattr(VcpuRunner, "_fault_esr", lambda self, inst, user: regs.ESR_PIL)
    diff = Differential(build_dir=BUILD)
    try:
        result = diff.check(seed)
    finally:
        diff.close()
    bad = [m for m in result.mismatches if m.explained_by is None]
    assert bad and bad[0].seed == seed
    assert any(m.name == "esr" and m.reference == regs.ESR_PTR for m in bad), bad[:3]


def state(pc: int, r3: int) -> dict[str, int | None]:
    return {"pc": pc, "r3": r3}


def test_traces_that_part_ways_are_compared_up_to_the_divergence_and_the_end_is_checked() -> None:
    ref = Trace([state(0x100, 1), state(0x104, 2), state(0x108, 3)], END_DONE)
    host = Trace([state(0x100, 1), state(0x10C, 2), state(0x108, 3)], END_DONE)
    stops, found = compare_traces(5, ref, host, lambda *a: None)
    assert stops == 2
    assert found[0] == Mismatch(5, 1, 0x104, "pc", 0x104, 0x10C)
    short = Trace(ref.states[:2], "timeout after 5.0 s")
    stops, found = compare_traces(5, ref, short, lambda *a: None)
    assert stops == 2 and found[-1].name.startswith("end (") and found[-1].explained_by is None


def rerun(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in PACKAGES)}
    return subprocess.run(
        [sys.executable, "-m", "guestdbg_booke.fidelity", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.qemu
@no_qemu
def test_the_rerun_command_reports_a_seed() -> None:
    """``python -m guestdbg_booke.fidelity 7``: the seed's stops and undocumented mismatches."""
    out = rerun("7")
    assert out.returncode == 0, out.stdout + out.stderr
    pattern = r"seed 7: \d+ stops compared \(done / done\), \d+ mismatches, 0 undocumented"
    assert re.match(pattern, out.stdout), out.stdout


@pytest.mark.qemu
@no_qemu64
def test_the_rerun_command_takes_a_64_bit_core() -> None:
    """``python -m guestdbg_booke.fidelity 7 --core e5500``: the 64-bit program of seed 7."""
    out = rerun("7", "--core", "e5500")
    assert out.returncode == 0, out.stdout + out.stderr
    pattern = r"seed 7: \d+ stops compared \(done / done\), \d+ mismatches, 0 undocumented"
    assert re.match(pattern, out.stdout), out.stdout
