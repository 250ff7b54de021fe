"""Where a planted-trap single step must put its traps (guest-priority stepping).

The instruction words are the assembled guest's own (``booke_owndebug.S``, built by GNU as), read
from its image; the system-level words use their Power ISA encodings.
"""

from __future__ import annotations

import pytest

from guestdbg.errors import UnsupportedByArch
from guestdbg_booke.successors import CpuView, successors

from .harness import Machine

RFI, RFCI, RFDI, SC = 0x4C000064, 0x4C000066, 0x4C00004E, 0x44000002


@pytest.fixture(scope="module")
def image() -> Machine:
    return Machine("booke_owndebug", "e500mc")


def cpu(pc: int, **regs: int) -> CpuView:
    values = dict(lr=0x2000, ctr=0x3000, srr0=0x4000, csrr0=0x5000, mcsrr0=0x6000)
    values.update(regs)
    return CpuView(pc=pc, ivpr=0x100000, ivor_syscall=0x800, **values)


@pytest.mark.parametrize(
    ("label", "targets"),
    [
        ("h_branch", ["h_bl"]),  # b
        ("h_bl", ["h_func"]),  # bl
        ("h_blr", ["lr", "next"]),  # blr (bclr: LR, or on if its condition fails)
        ("h_tw", ["next"]),  # tw: over the guest's program handler, never into it
        ("g_iac", ["next"]),  # addi
    ],
)
def test_successors_of_the_guests_own_instructions(
    image: Machine, label: str, targets: list[str]
) -> None:
    pc = image.sym[label]
    where = {"lr": 0x2000, "next": pc + 4}
    want = sorted(where[t] if t in where else image.sym[t] for t in targets)
    assert successors(image.word(pc), cpu(pc)) == want


def test_returns_and_sc_follow_their_save_registers_and_vector() -> None:
    assert successors(RFI, cpu(0x100)) == [0x4000]
    assert successors(RFCI, cpu(0x100)) == [0x5000]
    assert successors(SC, cpu(0x100)) == [0x104, 0x100800]


def test_rfdi_cannot_be_stepped_because_dsrr0_has_no_kvm_interface() -> None:
    with pytest.raises(UnsupportedByArch, match="DSRR0"):
        successors(RFDI, cpu(0x100))
