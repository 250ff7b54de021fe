"""Emulated-host bugs the differential found in Unicorn's own translation, not yet fixed: each
runs the one instruction on both hosts and expects them to agree. Strict expected failures, so
a Unicorn (or model) fix turns them into failures that say to drop the marker and let the
generator produce the form again (``generator`` module docstring)."""

from __future__ import annotations

import pathlib

import pytest

from guestdbg.kvm.constants import KVM_EXIT_DEBUG
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


def _unicorn_step(code: str, rflags: int) -> tuple[int, int, int]:
    """One single step of ``code`` on the emulated x86 host (Unicorn), all GPRs 5: (exit
    reason, RIP, RFLAGS) after it."""
    import tempfile

    from x86 import execute_diff, machines

    from guestdbg.kvm import constants as C

    with tempfile.TemporaryDirectory() as tmp:
        m = machines.emulated(machines.build(execute_diff.GUEST, pathlib.Path(tmp)))
    try:
        execute_diff.prepare(m)
        m.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
        pc = execute_diff.CODE
        m.vm.write_phys(pc, bytes.fromhex(code) + b"\x90" * 8)
        m.vcpu.set_regs(execute_diff.REGS.pack(*[5] * 16, pc, rflags))
        reason = m.vcpu.run()
        regs = execute_diff.REGS.unpack(m.vcpu.get_regs())
        return reason, regs[16] - pc, regs[17]
    finally:
        m.close()


@pytest.mark.xfail(strict=True, reason="Unicorn: RFLAGS.RF stays set after an instruction")
def test_rf_is_cleared_once_an_instruction_completes() -> None:
    """Found by tests/x86/test_execute_differential.py: the CPU (and KVM's emulator) clear RF
    when an instruction completes (SDM vol. 3 §18.3.1.1); Unicorn leaves it set."""
    assert _unicorn_step("90", 0x10002) == (KVM_EXIT_DEBUG, 1, 0x2)


@pytest.mark.xfail(strict=True, reason="Unicorn: C6/C7 /0 with REX.R raises #UD")
def test_mov_immediate_with_rex_r_ignores_it() -> None:
    """Found by tests/x86/test_execute_differential.py: REX.R does not extend an opcode
    extension (the /0 of mov r/m, imm), so 45 c7 c5 imm32 is mov r13d, imm32 on the CPU; the
    emulated host's step runs nothing (no IDT: KVM_EXIT_SHUTDOWN)."""
    assert _unicorn_step("45c7c501000000", 0x2) == (KVM_EXIT_DEBUG, 7, 0x2)
