"""The e5500 and e6500 emulated hosts (kvm_e500mc on a 64-bit host kernel), through the KVM byte
interface: what is 64-bit about them (docs/reference/kvm-debug-abi.md §9, 64-bit cores).

The guests are 64-bit ELFs from ``tests/guests/ppc64``; they enter 64-bit mode themselves
(``mtmsr`` with MSR[CM]) and set EPCR[ICM], so their interrupt handlers run in 64-bit mode too.
Code and data above 4 GiB live in a memory slot the test adds there (the emulated host translates
effective = physical).
"""

from __future__ import annotations

import errno
import struct

import pytest
from emuhost.machine import CORES64, L, Machine

from guestdbg.errors import InvalidRequest, KernelError
from guestdbg.kvm.constants import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg_booke import abi, regs
from guestdbg_booke.emuhost import HOSTIO_BASE, HOSTIO_DONE, EmulatedBookeVm, isa, kvm_emulate
from guestdbg_booke.emuhost.kvm_uapi import (
    KVM_REG_PPC_EPCR,
    KVM_REG_PPC_VR0,
    KVM_REG_PPC_VRSAVE,
    KVM_REG_PPC_VSCR,
)

FAR = 1 << 32
HW = abi.KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_ENABLE
SW = abi.KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_ENABLE
MSR_CM_GS = regs.MSR_CM | regs.MSR_GS


@pytest.fixture(params=CORES64)
def core(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def set_debug(m: Machine, control: int, bps: list[tuple[int, int]] | None = None) -> None:
    """KVM_SET_GUEST_DEBUG, then the full register write that makes MSR[DE] follow it
    (kvmppc_vcpu_sync_debug runs at the next kvmppc_set_msr; QEMU always writes back)."""
    m.set_debug(control, bps)
    m.set_regs()


def far_machine(core: str, own_iac: bool = False) -> Machine:
    m = Machine("far64", core)
    m.vm.memory.add_slot(FAR, 0x10000)  # the VMM gives the guest RAM at 4 GiB
    m.set_regs(r3=int(own_iac))
    return m


def log_entries(m: Machine, symbol: str, n: int, words: int) -> list[tuple[int, ...]]:
    data = m.vm.read_phys(m.sym[symbol], 8 * words * n)
    return [struct.unpack_from(f">{words}Q", data, 8 * words * i) for i in range(n)]


def test_the_guest_runs_in_64_bit_mode_and_its_own_handlers_get_64_bit_state(core: str) -> None:
    m = Machine("traps64", core)
    assert m.checkpoints() == [1, 2, 3]
    assert m.gpr(29) == 3 and m.gpr(5) == 1 << 40
    assert m.reg("msr") == MSR_CM_GS
    tw, sc, swbp = log_entries(m, "log", 3, 5)
    # booke.c kvmppc_booke_irqprio_deliver: SRR1 = the MSR (CM, GS), the handler's MSR gets
    # MSR[CM] from EPCR[ICM] (CONFIG_64BIT)
    assert tw == (6, m.sym["own_trap"], MSR_CM_GS, regs.ESR_PTR, MSR_CM_GS)
    assert sc == (8, m.sym["own_sc"] + 4, MSR_CM_GS, regs.ESR_PTR, MSR_CM_GS)
    assert swbp == (6, m.sym["own_swbp"], MSR_CM_GS, regs.ESR_PIL, MSR_CM_GS)


def test_without_epcr_icm_the_handler_runs_in_32_bit_mode(core: str) -> None:
    m = Machine("traps64", core)
    set_debug(m, HW, [(m.sym["in_64"], abi.KVMPPC_DEBUG_BREAKPOINT)])
    assert m.run().status == abi.KVMPPC_DEBUG_BREAKPOINT
    m.vcpu.set_one_reg(KVM_REG_PPC_EPCR, 0)  # the VMM clears the guest's EPCR[ICM]
    set_debug(m, 0)
    assert m.checkpoints() == [1, 2, 3]
    assert [e[4] & (regs.MSR_CM | regs.MSR_GS) for e in log_entries(m, "log", 3, 5)] == [
        regs.MSR_GS
    ] * 3


def test_epcr_is_a_one_reg_of_the_64_bit_hosts_only(core: str) -> None:
    m = Machine("traps64", core)
    m.vcpu.set_one_reg(KVM_REG_PPC_EPCR, regs.SPRN_EPCR_ICM)
    assert m.one_reg(KVM_REG_PPC_EPCR) == regs.SPRN_EPCR_ICM
    vm32 = EmulatedBookeVm("e500mc")
    with pytest.raises(KernelError) as e:
        vm32.vcpus[0].get_one_reg(KVM_REG_PPC_EPCR)
    assert e.value.errno == errno.EINVAL


def test_a_host_iac_above_4_gib_exits_with_the_64_bit_address(core: str) -> None:
    m = far_machine(core)
    set_debug(m, HW, [(FAR, abi.KVMPPC_DEBUG_BREAKPOINT)])
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == FAR  # unsigned long on a 64-bit host
    for _ in range(2):  # both calls
        ex = m.run()
        assert (ex.reason, ex.status, ex.address, m.pc) == (
            KVM_EXIT_DEBUG,
            abi.KVMPPC_DEBUG_BREAKPOINT,
            FAR,
            FAR,
        )
        set_debug(m, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)
        m.run()  # step over it, then re-arm
        set_debug(m, HW, [(FAR, abi.KVMPPC_DEBUG_BREAKPOINT)])
    set_debug(m, 0)
    assert m.run_to_done() == 0x22


def test_a_host_write_watch_above_4_gib_exits_before_the_store(core: str) -> None:
    m = far_machine(core)
    set_debug(m, HW, [(FAR + 0x100, abi.KVMPPC_DEBUG_WATCH_WRITE)])
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (
        KVM_EXIT_DEBUG,
        abi.KVMPPC_DEBUG_WATCH_WRITE,
        FAR + 0x100,
    )
    assert m.pc == FAR  # the stw of the snippet, not executed yet
    assert m.vm.read_phys(FAR + 0x100, 4) == bytes(4)
    set_debug(m, 0)
    assert m.run_to_done() == 0x22
    assert m.vm.read_phys(FAR + 0x100, 4) == (0x22).to_bytes(4, "big")


def test_the_guests_own_breakpoint_word_above_4_gib_gets_a_64_bit_srr0(core: str) -> None:
    """Nobody debugs: booke.c queues the program interrupt (ESR[PIL]) and delivers it with the
    full NIP in SRR0 and MSR[CM] from EPCR[ICM]."""
    m = far_machine(core)
    assert m.run_to_done() == 0x22
    assert log_entries(m, "plog", 2, 4) == [(FAR + 4, MSR_CM_GS, regs.ESR_PIL, MSR_CM_GS)] * 2


def test_the_guests_own_iac_on_a_64_bit_address_is_delivered_to_it(core: str) -> None:
    m = far_machine(core, own_iac=True)
    assert m.run_to_done() == 0x22
    ((dsrr0, dbsr, msr),) = log_entries(m, "dlog", 1, 3)
    assert dsrr0 == FAR and dbsr & regs.DBSR_IAC1
    assert msr & regs.MSR_CM  # the debug handler too runs in 64-bit mode (EPCR[ICM])


def test_a_host_single_step_in_64_bit_mode_follows_64_bit_values(core: str) -> None:
    m = Machine("traps64", core)
    set_debug(m, HW, [(m.sym["in_64"], abi.KVMPPC_DEBUG_BREAKPOINT)])
    assert m.run().address == m.sym["in_64"]
    set_debug(m, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)
    seen = []
    for _ in range(2):
        ex = m.run()
        assert (ex.reason, ex.status) == (KVM_EXIT_DEBUG, 0)
        seen.append((m.pc, m.gpr(5)))
    assert seen == [(m.sym["in_64"] + 4, 1), (m.sym["own_trap"], 1 << 40)]
    assert m.reg("msr") & regs.MSR_CM


def test_srr0_iac_and_dac_keep_64_bit_values_through_the_uapi(core: str) -> None:
    m = Machine("traps64", core)
    big = 0x1234_5678_9ABC_DEF0
    m.set_regs(srr0=big, pc=m.sym["_start"])
    assert m.reg("srr0") == big
    for reg in (abi.KVM_REG_PPC_IAC1, abi.KVM_REG_PPC_DAC2):
        m.vcpu.set_one_reg(reg, big)
        assert m.one_reg(reg) == big
    # a 32-bit host keeps the low half (unsigned long), as before
    m32 = Machine("traps", "e500mc")
    m32.vcpu.set_one_reg(abi.KVM_REG_PPC_IAC1, big)
    assert m32.one_reg(abi.KVM_REG_PPC_IAC1) == big & 0xFFFFFFFF


def test_a_32_bit_e500_host_refuses_a_64_bit_elf() -> None:
    m = Machine("traps64", "e5500")
    with pytest.raises(InvalidRequest, match="not a 32-bit big-endian PowerPC ELF"):
        EmulatedBookeVm("e500mc").load_elf(m.elf)


# -- AltiVec -----------------------------------------------------------------------------------


def test_e6500_altivec_unavailable_goes_to_the_guest_then_its_vector_code_runs() -> None:
    m = Machine("altivec64", "e6500")
    assert m.run_to_done() == 1  # one AltiVec-unavailable interrupt, handled by the guest
    want = bytes((a + b) & 0xFF for a, b in zip(range(1, 17), bytes.fromhex(
        "102030405060708090a0b0c0d0e0f0ff"), strict=True))  # fmt: skip
    assert m.vm.read_phys(m.sym["vout"], 16) == want
    assert m.one_reg(KVM_REG_PPC_VR0 + 3) == int.from_bytes(want, "big")


def test_e6500_vector_registers_and_vscr_through_one_reg() -> None:
    m = Machine("altivec64", "e6500")
    value = 0x0011_2233_4455_6677_8899_AABB_CCDD_EEFF
    m.vcpu.set_one_reg(KVM_REG_PPC_VR0 + 1, value)
    m.vcpu.set_one_reg(KVM_REG_PPC_VSCR, 0x00010000)  # VSCR[NJ]
    assert m.one_reg(KVM_REG_PPC_VR0 + 1) == value
    assert m.one_reg(KVM_REG_PPC_VSCR) == 0x00010000
    assert m.one_reg(KVM_REG_PPC_VR0) == 0  # VR0 survived the VSCR round trip
    m.vcpu.set_one_reg(KVM_REG_PPC_VRSAVE, 0xF0000000)
    assert m.one_reg(KVM_REG_PPC_VRSAVE) == 0xF0000000


@pytest.mark.parametrize(
    ("core", "err"),
    [("e5500", errno.ENXIO), ("e500mc", errno.EINVAL), ("e500v2", errno.EINVAL)],
)
def test_vector_registers_are_refused_on_cores_without_altivec(core: str, err: int) -> None:
    """powerpc.c: ENXIO without CPU_FTR_ALTIVEC on a CONFIG_ALTIVEC kernel; a 32-bit e500
    kernel has no CONFIG_ALTIVEC, so the id is unknown (EINVAL). VRSAVE is booke.c's and works
    on every core."""
    vcpu = EmulatedBookeVm(core).vcpus[0]
    for reg in (KVM_REG_PPC_VR0 + 7, KVM_REG_PPC_VSCR):
        with pytest.raises(KernelError) as e:
            vcpu.get_one_reg(reg)
        assert e.value.errno == err
        with pytest.raises(KernelError) as e:
            vcpu.set_one_reg(reg, 1)
        assert e.value.errno == err
    vcpu.set_one_reg(KVM_REG_PPC_VRSAVE, 5)
    assert vcpu.get_one_reg(KVM_REG_PPC_VRSAVE) == 5


def test_an_e6500_snapshot_carries_the_vector_registers() -> None:
    m = Machine("altivec64", "e6500")
    assert m.run_to_done() == 1
    snap = m.vm.snapshot()
    vm = EmulatedBookeVm.from_snapshot(snap)
    assert vm.vcpus[0].get_one_reg(KVM_REG_PPC_VR0 + 3) == m.one_reg(KVM_REG_PPC_VR0 + 3)
    assert vm.vcpus[0].get_one_reg(KVM_REG_PPC_VSCR) == m.one_reg(KVM_REG_PPC_VSCR)


def test_the_guest_reports_done_through_a_zero_extended_hostio_address(core: str) -> None:
    m = Machine("traps64", core)
    exits = [m.run() for _ in range(4)]
    assert all(e.reason == KVM_EXIT_MMIO for e in exits)
    assert exits[-1].mmio_addr == HOSTIO_DONE


def test_kvm_translate_takes_the_whole_linear_address_on_a_64_bit_host() -> None:
    """e500_mmu.c kvmppc_core_vcpu_translate: the EA is a gva_t (unsigned long). Bits 32-40 are
    also PID and AS; the boot mapping has TID 0 and so matches any PID."""
    addr = FAR + 0x100000
    assert Machine("traps64", "e5500").vm.vcpus[0].translate(addr) is None
    assert Machine("traps", "e500mc").vm.vcpus[0].translate(addr) == 0x100000


@pytest.mark.parametrize(("mode", "kept"), [(regs.MSR_CM, FAR | 0xA), (0, 0xA)])
def test_tlbwe_keeps_a_64_bit_mas2_only_in_64_bit_mode(mode: int, kept: int) -> None:
    """e500_mmu.c kvmppc_e500_emul_tlbwe: MAS2 is cut to 32 bits when the guest's MSR[CM] is 0
    (white-box: the guest TLB entry the emulated tlbwe writes)."""
    m = Machine("traps64", "e5500")
    a = m.vcpu.arch
    a.msr = regs.MSR_GS | mode
    a.mas0, a.mas1, a.mas2, a.mas7_3 = 0x10020000, 0x80000100, FAR | 0xA, 0
    tlbwe = 0x7C0007A4
    kind = isa.privileged(tlbwe)
    assert kind is not None
    kvm_emulate.emulate_privileged(m.vcpu.kvm, tlbwe, kind)
    assert a.tlb.tlb1[2][1] == kept


def test_doubleword_mmio_in_64_bit_mode_exits_with_8_bytes_and_loads_them_back(core: str) -> None:
    """kvmppc_emulate_loadstore decodes ld/std/lwa/stdu too; the loaded value fills the
    register at the next KVM_RUN (kvmppc_complete_mmio_load, lwa sign-extended)."""
    m = Machine("mmio64", core)
    base = HOSTIO_BASE
    ex = m.run()
    assert (ex.mmio_addr - base, ex.mmio_write) == (0x100, True)
    assert ex.mmio_data == ((0x1234 << 36) | 0x5678).to_bytes(8, "big")
    run = m.vcpu.kvm_run
    data = L.offsetof("struct kvm_run", "mmio", "data")
    for offset, reply in ((0x108, 0x0102030405060708), (0x110, 0x80000001)):
        ex = m.run()
        assert (ex.mmio_addr - base, ex.mmio_write, len(ex.mmio_data)) == (
            offset,
            False,
            8 if offset == 0x108 else 4,
        )
        size = len(ex.mmio_data)
        run[data : data + size] = reply.to_bytes(size, "big")
    ex = m.run()  # stdu of r6
    assert (ex.mmio_addr - base, ex.mmio_data) == (0x118, (0x0102030405060708).to_bytes(8, "big"))
    assert m.gpr(6) == 0x0102030405060708
    assert m.gpr(7) == 0xFFFF_FFFF_8000_0001  # lwa: sign-extended to 64 bits
    assert m.gpr(8) == base + 0x118  # the update form moved the base
    assert m.run().mmio_addr == HOSTIO_DONE
