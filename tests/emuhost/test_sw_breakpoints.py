"""Software breakpoints and the program-interrupt path (booke.c kvmppc_handle_exit
BOOKE_INTERRUPT_PROGRAM, emulate.c, e500_emulate.c kvmppc_e500_emul_ehpriv;
docs/reference/kvm-debug-abi.md §3.5)."""

from __future__ import annotations

import errno

import pytest

from guestdbg.errors import KernelError
from guestdbg.kvm.constants import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_EXIT_UNKNOWN,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg_booke import abi, regs

from .machine import Machine, guest_debug

SW = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP
DDDD00 = regs.KVMPPC_INST_SW_BREAKPOINT.to_bytes(4, "big")
EHPRIV1 = regs.KVMPPC_INST_EHPRIV_DEBUG.to_bytes(4, "big")

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def log_entries(m: Machine) -> list[tuple[int, int, int, int, int]]:
    raw = m.vm.read_phys(m.sym["log"], 32 * 16)
    out = []
    for n in range(16):
        e = raw[n * 32 : n * 32 + 20]
        vec, srr0, srr1, esr, msr = (int.from_bytes(e[i : i + 4], "big") for i in range(0, 20, 4))
        if vec:
            out.append((vec, srr0, srr1, esr, msr))
    return out


@pytest.mark.parametrize(("flavour", "word"), [("dddd00", 0x00DDDD00), ("ehpriv", 0x7C000A1C)])
def test_debug_inst_reports_the_flavours_breakpoint_word_and_is_read_only(
    flavour: str, word: int
) -> None:
    # kvmppc_get_one_reg: KVM_REG_PPC_DEBUG_INST = KVMPPC_INST_SW_BREAKPOINT; no set case
    m = Machine("loop", "e500mc", sw_break_flavour=flavour)
    assert m.one_reg(abi.KVM_REG_PPC_DEBUG_INST) == word
    with pytest.raises(KernelError) as e:
        m.vcpu.set_one_reg(abi.KVM_REG_PPC_DEBUG_INST, 0)
    assert e.value.errno == errno.EINVAL


def test_sw_breakpoint_exits_with_status_0_and_the_pc_not_advanced(core: str) -> None:
    m = Machine("loop", core)
    bp = m.sym["bp_here"]
    original = m.vm.read_phys(bp, 4)
    m.vm.write_phys(bp, DDDD00)
    m.set_debug(SW)
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, 0, bp)
    assert (m.pc, m.gpr(4)) == (bp, 0)
    # the VMM restores the instruction; the engine's stale translation must not survive it
    m.vm.write_phys(bp, original)
    m.set_debug(0)
    assert m.run_to_done() == 100


def test_a_breakpoint_word_written_after_the_code_ran_takes_effect(core: str) -> None:
    # write_phys drops every vCPU's cached translation of the range
    m = Machine("loop", core, smp=2)
    m.run_to_done(vcpu=1)  # vCPU 1 translates the loop
    m.vm.write_phys(m.sym["bp_here"], DDDD00)
    v1 = m.vm.vcpus[1]
    m.set_regs(vcpu=1, pc=m.sym["loop"], r4=0)
    v1.set_guest_debug(guest_debug(SW))
    ex = m.run(vcpu=1)
    assert (ex.reason, ex.address) == (KVM_EXIT_DEBUG, m.sym["bp_here"])


def test_hv_without_use_sw_bp_the_word_is_an_illegal_instruction_for_the_guest() -> None:
    # HV: the check needs KVM_GUESTDBG_USE_SW_BP; then "msr & (PR|GS)" queues the program
    # interrupt with the hardware's ESR
    m = Machine("traps", "e500mc")
    m.run_to_done()
    swbp = [e for e in log_entries(m) if e[1] == m.sym["swbp_insn"]]
    assert swbp == [(6, m.sym["swbp_insn"], regs.MSR_GS, regs.ESR_PIL, regs.MSR_GS)]


def test_pr_supervisor_word_exits_even_without_use_sw_bp() -> None:
    # PR: the guest's supervisor code is emulated, and emulate.c turns primary opcode 0 word
    # 0x00dddd00 into KVM_EXIT_DEBUG without looking at guest_debug
    m = Machine("traps", "e500v2")
    exits = []
    for _ in range(10):
        ex = m.run()
        exits.append(ex.reason)
        if ex.reason == KVM_EXIT_DEBUG:
            assert (ex.status, ex.address, m.pc) == (0, m.sym["swbp_insn"], m.sym["swbp_insn"])
            break
    assert KVM_EXIT_DEBUG in exits


def test_ehpriv_1_exits_without_guest_debug_on_hv_in_any_guest_mode() -> None:
    # ehpriv is hypervisor-privileged: BOOKE_INTERRUPT_HV_PRIV -> kvmppc_e500_emul_ehpriv
    m = Machine("traps", "e500mc")
    m.vm.write_phys(m.sym["user_priv_insn"], EHPRIV1)
    for _ in range(5):
        ex = m.run()
        if ex.reason == KVM_EXIT_DEBUG:
            break
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, 0, m.sym["user_priv_insn"])
    assert m.reg("msr") & regs.MSR_PR  # it was hit in guest user mode


def test_ehpriv_flavour_treats_dddd00_as_a_plain_illegal_instruction() -> None:
    m = Machine("traps", "e500mc", sw_break_flavour="ehpriv")
    m.set_debug(SW)
    m.run_to_done()
    swbp = [e for e in log_entries(m) if e[1] == m.sym["swbp_insn"]]
    assert [e[3] for e in swbp] == [regs.ESR_PIL]


def test_hv_program_interrupts_reach_the_guest_with_the_hardware_esr() -> None:
    m = Machine("traps", "e500mc")
    m.run_to_done()
    s = m.sym
    gs, pr = regs.MSR_GS, regs.MSR_PR
    assert log_entries(m) == [
        (6, s["trap_insn"], gs, regs.ESR_PTR, gs),
        (8, s["sc_insn"] + 4, gs, regs.ESR_PTR, gs),
        (6, s["illegal_insn"], gs, regs.ESR_PIL, gs),
        (6, s["swbp_insn"], gs, regs.ESR_PIL, gs),
        (7, s["fp_insn"], gs, regs.ESR_PIL, gs),
        (6, s["user_priv_insn"], gs | pr, regs.ESR_PPR, gs),
        (8, s["user_sc"] + 4, gs | pr, regs.ESR_PPR, gs),
    ]


def test_pr_supervisor_trap_ors_ptr_into_the_guest_esr() -> None:
    # emulate.c OP_TRAP: kvmppc_core_queue_program(vcpu, vcpu->arch.shared->esr | ESR_PTR);
    # HV takes the hardware ESR (exactly PTR)
    m = Machine("traps", "e500v2")
    ex = m.run()
    assert ex.reason == KVM_EXIT_UNKNOWN  # the illegal word comes later; the trap came first
    first = log_entries(m)[0]
    assert first[:2] == (6, m.sym["trap_insn"])
    assert first[3] == regs.ESR_ST | regs.ESR_PTR


def test_pr_supervisor_illegal_instruction_is_exit_unknown_then_a_pil_for_the_guest() -> None:
    # emulation_exit EMULATE_FAIL: hardware_exit_reason = ~0 << 32 | inst, ESR_PIL queued,
    # RESUME_HOST with exit_reason still KVM_EXIT_UNKNOWN
    m = Machine("traps", "e500v2")
    ex = m.run()
    assert (ex.reason, ex.hw_reason) == (KVM_EXIT_UNKNOWN, 0xFFFFFFFF_00000000)
    assert m.pc == m.sym["illegal_insn"]
    m.run()  # the queued PIL is delivered at the next entry
    assert (6, m.sym["illegal_insn"]) in [e[:2] for e in log_entries(m)]


def test_pr_user_mode_program_interrupts_take_the_hardware_esr() -> None:
    # "Program traps generated by user-level software must be handled by the guest kernel."
    m = Machine("traps", "e500v2")
    for _ in range(10):
        ex = m.run()
        if ex.reason == KVM_EXIT_MMIO:
            break
        if ex.reason == KVM_EXIT_DEBUG and m.pc == m.sym["swbp_insn"]:
            m.set_regs(pc=m.pc + 4)  # the host skips the breakpoint word it does not own
    user = [e for e in log_entries(m) if e[1] == m.sym["user_priv_insn"]]
    assert user == [(6, m.sym["user_priv_insn"], regs.MSR_PR, regs.ESR_PPR, 0)]


def test_hv_sc_1_is_a_hypercall_answered_ev_unimplemented() -> None:
    # BOOKE_INTERRUPT_HV_SYSCALL from guest supervisor state: r3 = kvmppc_kvm_pv(vcpu), which is
    # EV_UNIMPLEMENTED (12) for every token the model offers; no interrupt for the guest
    m = Machine("loop", "e500mc")
    m.vm.write_phys(m.sym["bp_here"], (0x44000022).to_bytes(4, "big"))  # sc 1
    m.set_regs(pc=m.sym["bp_here"], r4=0, r5=1)
    m.set_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)
    m.set_regs()
    ex = m.run()
    assert (ex.reason, m.pc) == (KVM_EXIT_DEBUG, m.sym["bp_here"] + 4)
    assert (m.gpr(3), m.gpr(4)) == (12, 0)


def test_pr_sc_with_the_magic_r0_is_a_hypercall_and_without_it_a_system_call() -> None:
    # booke.c BOOKE_INTERRUPT_SYSCALL (PR): supervisor and r0 == KVM_SC_MAGIC_R0 -> hypercall
    m = Machine("loop", "e500v2")
    m.vm.write_phys(m.sym["bp_here"], (0x44000002).to_bytes(4, "big"))  # sc
    m.set_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)
    m.set_regs(pc=m.sym["bp_here"], r0=0x4B564D21)
    m.run()
    assert (m.pc, m.gpr(3)) == (m.sym["bp_here"] + 4, 12)
    m.set_regs(pc=m.sym["bp_here"], r0=0)
    m.run()
    assert m.pc == m.sreg("ivpr") | m.sreg("ivor_low", 8)  # the guest's system-call vector
