"""The emulated x86-64 host against this machine's /dev/kvm, program by program, stop by stop
(``guestdbg_x86.fidelity.differential``): a seeded slice on every suite run, and the runner's
own ability to catch and locate a difference."""

from __future__ import annotations

import pathlib

import pytest

from guestdbg.fidelity import FidelityTally
from guestdbg_x86.fidelity import differential
from guestdbg_x86.fidelity.differential import Differential
from guestdbg_x86.fidelity.generator import generate
from guestdbg_x86.fidelity.observe import REGISTERS

from .x86_reference import require_kvm

pytestmark = pytest.mark.realkvm

SLICE_SEED = 20_000
SLICE = 60


def test_a_seeded_slice_of_programs_shows_no_undocumented_difference(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    require_kvm()
    out = tmp_path_factory.getbasetemp().parent / "fidelity-x86-slice"
    tally = differential.run(SLICE, SLICE_SEED, out_dir=out)
    firsts = "\n".join(str(m) for m in tally.first_undocumented)
    assert tally.undocumented == 0, f"{tally.line()}\nfirst undocumented:\n{firsts}"
    assert tally.programs == SLICE
    assert tally.compared_stops > 50 * SLICE  # every program really ran, step by step
    # each reached its hlt: exit and debug.exception/pc/dr6/dr7 differ there
    assert tally.by_difference.get("x86-emulator-hlt-step") == 5 * SLICE


def test_a_host_that_goes_wrong_is_caught_at_that_stop_with_the_seed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RBX of the emulated host is corrupted after its 10th step: the run ends there, and the
    mismatch names the seed, the stop and the register."""
    require_kvm()
    program = generate(SLICE_SEED)
    with Differential(tmp_path) as diff:
        (elf,) = diff.build([program])
        vcpu = diff.host.vcpu
        real_run = vcpu.run
        steps = [0]

        def faulty_run() -> int:
            reason = real_run()
            steps[0] += 1
            if steps[0] == 10:
                regs = vcpu.get_regs()
                offset = 8 * REGISTERS.index("rbx")
                regs[offset] ^= 1
                vcpu.set_regs(bytes(regs))
            return reason

        monkeypatch.setattr(vcpu, "run", faulty_run)
        result = diff.run_program(program, elf)
    assert result.end == "diverged"
    (bad,) = result.undocumented
    assert (bad.seed, bad.stop, bad.name) == (SLICE_SEED, 9, "rbx")
    assert bad.host == bad.reference ^ 1 if bad.reference is not None else False
    tally = FidelityTally("x86_64")
    tally.add_program(result.stops, result.mismatches)
    assert tally.undocumented == 1
