"""The KVM selftest ``tools/testing/selftests/kvm/x86/debug_regs.c``, case by case, on the
emulated x86 host and on this machine's /dev/kvm (docs/reference/kvm-debug-abi.md §6.1).

Each case sets ``kvm_guest_debug`` exactly as the selftest does and checks the exit it checks.
What a host cannot do is found by trying, never assumed: on the kvm_pvm host (guest CPL0 code
runs in KVM's instruction emulator, docs/reference/this-machine-kvm.md) ``int3`` ends in
KVM_EXIT_INTERNAL_ERROR, data breakpoints never fire and DR7.GD does not fault; those cases skip
there, saying what was observed. The emulated host must pass all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guestdbg.kvm import constants as C
from guestdbg_x86 import abi

from .machines import Machine

DB_VECTOR, BP_VECTOR = 1, 3
TARGET_DR6 = 0xFFFF0FF0
"""debug_regs.c: DR6 with nothing but the bits under test."""
DR6_BS, DR6_BD, DR7_GD = 0x4000, 0x2000, 0x2000
ENABLE, SINGLESTEP = C.KVM_GUESTDBG_ENABLE, C.KVM_GUESTDBG_SINGLESTEP
USE_SW_BP, USE_HW_BP = abi.KVM_GUESTDBG_USE_SW_BP, abi.KVM_GUESTDBG_USE_HW_BP
BLOCKIRQ = abi.KVM_GUESTDBG_BLOCKIRQ
SS_SIZES = (1, 2, 2, 5, 2, 1)
"""Instruction lengths from ss_start: sti, xor, cpuid, movl, rdmsr, cli (debug_regs.c)."""

MakeMachine = Callable[[str], Machine]


def test_int3_with_use_sw_bp_exits_with_bp_at_the_int3(make_machine: MakeMachine) -> None:
    m = make_machine("debug_regs")
    m.start_at("sw_bp")
    m.guest_debug(ENABLE | USE_SW_BP)
    reason = m.run()
    if m.kind == "kvm" and reason == C.KVM_EXIT_INTERNAL_ERROR:
        pytest.skip("this /dev/kvm (kvm_pvm) cannot run int3 at CPL0: KVM_EXIT_INTERNAL_ERROR")
    assert reason == C.KVM_EXIT_DEBUG, C.exit_name(reason)
    exception, pc, _ = m.debug_exit()
    assert (exception, pc) == (BP_VECTOR, m.sym("sw_bp"))
    assert m.reg("rip") == m.sym("sw_bp")  # the exit leaves RIP at the int3


def test_instruction_breakpoint_in_each_of_dr0_to_dr3(make_machine: MakeMachine) -> None:
    m = make_machine("debug_regs")
    m.start_at("hw_bp")
    for i in range(4):
        m.guest_debug(ENABLE | USE_HW_BP, {i: m.sym("hw_bp"), 7: 0x400 | 1 << (2 * i + 1)})
        reason = m.run()
        assert reason == C.KVM_EXIT_DEBUG, C.exit_name(reason)
        assert m.debug_exit() == (DB_VECTOR, m.sym("hw_bp"), TARGET_DR6 | 1 << i)
        assert m.reg("rip") == m.sym("hw_bp")  # a fault: the nop has not run


def test_data_write_breakpoint_in_each_of_dr0_to_dr3_traps_after_the_store(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("debug_regs")
    store = m.sym("write_data") - 7  # the 7-byte RIP-relative mov
    m.set_regs(rip=store, rax=1234, rsp=m.sym("stack_top"), rflags=2)
    for i in range(4):
        dr7 = 0x400 | 1 << (2 * i + 1) | 0x000D0000 << (4 * i)  # RW=01 write, LEN=11 (4)
        m.guest_debug(ENABLE | USE_HW_BP, {i: m.sym("guest_value"), 7: dr7})
        reason = m.run()
        if m.kind == "kvm" and reason == C.KVM_EXIT_HLT:
            pytest.skip(
                "this /dev/kvm (kvm_pvm) never fires data breakpoints: the store ran to hlt"
            )
        assert reason == C.KVM_EXIT_DEBUG, C.exit_name(reason)
        assert m.debug_exit() == (DB_VECTOR, m.sym("write_data"), TARGET_DR6 | 1 << i)
        assert m.u64("guest_value") & 0xFFFFFFFF == 1234  # a trap: the store has happened
        m.vm.write_phys(m.sym("guest_value"), bytes(4))
        m.set_regs(rip=m.reg("rip") - 7)  # roll back over the store, as the selftest does


def test_single_step_with_blockirq_advances_by_each_instruction_length(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("debug_regs")
    m.start_at("ss_start")
    blockirq = BLOCKIRQ if m.vm.check_extension(C.KVM_CAP_SET_GUEST_DEBUG2) & BLOCKIRQ else 0
    target = m.sym("ss_start")
    for size in SS_SIZES:
        target += size
        m.guest_debug(ENABLE | SINGLESTEP | blockirq, {7: 0x400})
        reason = m.run()
        assert reason == C.KVM_EXIT_DEBUG, C.exit_name(reason)
        assert m.debug_exit() == (DB_VECTOR, target, TARGET_DR6 | DR6_BS)
    assert target == m.sym("bd_start")


def test_dr7_gd_faults_before_a_mov_from_dr0(make_machine: MakeMachine) -> None:
    m = make_machine("debug_regs")
    m.start_at("bd_start")
    m.guest_debug(ENABLE | USE_HW_BP, {7: 0x400 | DR7_GD})
    reason = m.run()
    if m.kind == "kvm" and reason == C.KVM_EXIT_HLT:
        pytest.skip("this /dev/kvm (kvm_pvm) does not emulate DR7.GD: mov %dr0 ran to hlt")
    assert reason == C.KVM_EXIT_DEBUG, C.exit_name(reason)
    assert m.debug_exit() == (DB_VECTOR, m.sym("bd_start"), TARGET_DR6 | DR6_BD)
    assert m.reg("rip") == m.sym("bd_start")


def test_cleared_controls_run_to_the_end(make_machine: MakeMachine) -> None:
    m = make_machine("debug_regs")
    m.start_at("ss_start")
    m.guest_debug(ENABLE | USE_HW_BP, {0: m.sym("done"), 7: 0x402})
    m.guest_debug(0)  # all controls cleared: nothing of the above may still fire
    assert m.run() == C.KVM_EXIT_HLT
    assert m.reg("rip") == m.sym("after_done")
    assert m.u64("last_vector") == (1 << 64) - 1  # no exception reached the guest
