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


# -- 64-bit cores: the computation mode (docs/reference/kvm-debug-abi.md §9.4) ---------

B_FWD, B_BACK, BEQ_FWD, BLR = 0x48000010, 0x4BFFFFF0, 0x41820008, 0x4E800020
"""``b .+0x10``, ``b .-0x10``, ``beq .+8``, ``blr`` (Power ISA Book I encodings)."""
CM, ICM = 1 << 31, 0x02000000


def cpu64(pc: int, msr: int, **regs: int) -> CpuView:
    values = dict(lr=0x2000, ctr=0x3000, srr0=0x4000, csrr0=0x5000, mcsrr0=0x6000)
    values.update(ivpr=0x100000, ivor_syscall=0x800)
    values.update(regs)
    return CpuView(pc=pc, core_bits=64, msr=msr, **values)


def test_in_64bit_mode_branches_and_fall_through_cross_4gib_without_wrapping() -> None:
    assert successors(B_FWD, cpu64(0xFFFFFFF8, CM)) == [0x1_0000_0008]
    assert successors(B_BACK, cpu64(0x4, CM)) == [0xFFFF_FFFF_FFFF_FFF4]
    assert successors(BEQ_FWD, cpu64(0xFFFFFFFC, CM)) == [0x1_0000_0000, 0x1_0000_0004]
    assert successors(BLR, cpu64(0x100, CM, lr=0x1_2345_6788)) == [0x104, 0x1_2345_6788]


def test_in_32bit_mode_a_64bit_core_wraps_at_4gib_like_a_32bit_core() -> None:
    """MSR[CM] = 0: the high-order 32 bits of the next address are 0."""
    assert successors(B_FWD, cpu64(0xFFFFFFF8, 0)) == [0x8]
    assert successors(B_BACK, cpu64(0x4, 0)) == [0xFFFFFFF4]
    assert successors(BEQ_FWD, cpu64(0xFFFFFFFC, 0)) == [0x0, 0x4]
    assert successors(BLR, cpu64(0x100, 0, lr=0x1_2345_6788)) == [0x104, 0x2345_6788]
    # a 32-bit core has no CM: bit 31 of its MSR changes nothing
    assert successors(B_FWD, cpu(0xFFFFFFF8, msr=CM)) == [0x8]


def test_a_return_from_interrupt_continues_in_the_mode_of_the_restored_msr() -> None:
    wide = 0x1_0000_0100
    assert successors(RFI, cpu64(0x100, CM, srr0=wide, srr1=CM)) == [wide]
    assert successors(RFI, cpu64(0x100, CM, srr0=wide, srr1=0)) == [0x100]
    assert successors(RFCI, cpu64(0x100, 0, csrr0=wide, csrr1=CM)) == [wide]


def test_sc_enters_its_vector_in_the_mode_epcr_icm_gives() -> None:
    high_ivpr = 0xFFFF_FFFF_0010_0000
    assert successors(SC, cpu64(0x100, CM, ivpr=high_ivpr, epcr=ICM)) == [
        0x104,
        0xFFFF_FFFF_0010_0800,
    ]
    assert successors(SC, cpu64(0x100, CM, ivpr=high_ivpr, epcr=0)) == [0x104, 0x100800]
