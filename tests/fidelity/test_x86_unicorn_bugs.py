"""Emulated-host bugs the differential found in Unicorn's own translation, not yet fixed: each
runs the one instruction on both hosts and expects them to agree. Strict expected failures, so
a Unicorn (or model) fix turns them into failures that say to drop the marker and let the
generator produce the form again (``generator`` module docstring)."""

from __future__ import annotations

import pathlib

import pytest

from guestdbg_x86.fidelity.differential import Differential
from guestdbg_x86.fidelity.generator import Program

from .x86_reference import require_kvm

pytestmark = pytest.mark.realkvm

SOURCE = """
	.code64
	.text
	.globl start
start:
	leaq data(%rip), %r15
	movl $0x7fffffff, %ebp
	movw $0x80, %ax
{body}
	hlt
halted:
	nop
text_end:
	.balign 4096
data:
	.quad 0x75950e0055bb6485, 0x1122334455667788
	.skip 240
	.balign 4096
stack:
	.skip 512
stack_top:
"""


def _run(tmp_path: pathlib.Path, seed: int, body: str) -> list[str]:
    require_kvm()
    program = Program(seed, 0, SOURCE.format(body=body), {})
    with Differential(tmp_path) as diff:
        (elf,) = diff.build([program])
        result = diff.run_program(program, elf)
    return [str(m) for m in result.undocumented]


@pytest.mark.xfail(strict=True, reason="Unicorn: RIP-relative address of SHLD imm8 misses the imm")
def test_shld_with_an_immediate_count_writes_its_rip_relative_operand(
    tmp_path: pathlib.Path,
) -> None:
    """Seed 2 of the first generator: shld $0x13, %ebp, data+0xeb(%rip)."""
    assert _run(tmp_path, 2, "\tshldl $0x13, %ebp, data+3(%rip)") == []


@pytest.mark.xfail(strict=True, reason="Unicorn: LOCK NEG computes the wrong status flags")
def test_lock_neg_sets_the_flags_of_the_negation(tmp_path: pathlib.Path) -> None:
    """Seeds 23 and 97 of the first generator: lock negb/negw on the data area."""
    assert _run(tmp_path, 23, "\tlock negw data+8(%rip)") == []
