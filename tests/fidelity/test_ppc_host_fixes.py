"""Emulated-host bugs the differential found, each checked where it lives and by its seed.

Every test names a seed whose program shows the difference with the fix undone (the default
length; the first finds were seeds 7 and 9 of an earlier generator); rerun one with
``python -m guestdbg_booke.fidelity SEED``.
"""

from __future__ import annotations

import pytest

from guestdbg_booke import regs
from guestdbg_booke.emuhost import EmulatedBookeVm, isa, kvm_emulate, kvm_spr
from guestdbg_booke.emuhost.guest_tlb import MAS1_IPROT, MAS1_VALID
from guestdbg_booke.emuhost.isa import Priv
from guestdbg_booke.fidelity.differential import Differential

from .ppc_support import BUILD, built, no_qemu, no_qemu64


def undocumented(seed: int, core: str = "e500mc") -> list[str]:
    diff = Differential(build_dir=BUILD, core=core)
    try:
        return [str(m) for m in diff.check(seed).mismatches if m.explained_by is None]
    finally:
        diff.close()


def test_the_boot_tlb1_entry_has_no_iprot_as_ppce500_creates_it_seed_0() -> None:
    """Seed 0, stop 71: ``tlbre`` of TLB1 entry 0 read MAS1 0xc0000800 on the host, 0x80000800
    on QEMU. ppce500's ``mmubooke_create_initial_mapping`` sets MAS1 = V | TSIZE only."""
    _, elf, _ = built(0)
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(elf)
    mas1 = vm.emulated_vcpus[0].arch.tlb.tlb1[0][0]
    assert mas1 & MAS1_VALID and not mas1 & MAS1_IPROT


def test_tlbncfg_are_the_e500mc_values_with_kvm_geometry_seed_3() -> None:
    """Seed 3, stop 3: ``mfspr TLB0CFG`` read 0x04000200 on the host, 0x04110200 on QEMU (no
    page sizes); TLB1CFG read 0x40040040 (TLBnCFG_PT, no IPROT, no page sizes), not 0x401cc040.
    KVM keeps the host's TLBnCFG and puts its own N_ENTRY/ASSOC in (``vcpu_mmu_init``), which
    are e500mc's own."""
    vm = EmulatedBookeVm("e500mc")
    k = vm.emulated_vcpus[0].kvm
    assert kvm_spr.mfspr(k, regs.SPRN_TLB1CFG) == 0x401CC040
    assert kvm_spr.mfspr(k, regs.SPRN_TLB0CFG) == 0x04110200


@pytest.mark.qemu
@no_qemu
@pytest.mark.parametrize("seed", [0, 3])
def test_the_seed_that_found_it_now_matches_qemu(seed: int) -> None:
    assert undocumented(seed) == []


def test_tlbsx_miss_prepares_the_mas_registers_like_kvmppc_e500_emul_tlbsx() -> None:
    """Found by a hand-written program run on both hosts, not by a seed: the generator avoids
    ``tlbsx`` misses, whose MAS0[NV] is the implementation's hint (QEMU's and KVM's differ).
    The host left MAS0 and MAS3 alone, dropped the EPN from MAS2 and MAS1[TS]; the kernel sets
    MAS0 from MAS4[TLBSELD] and TLB0's next victim, MAS1 = SPID | TS | MAS4[TSIZED], MAS2 =
    EPN | MAS4's attributes, and keeps only MAS3's user bits."""
    vm = EmulatedBookeVm("e500mc")
    k = vm.emulated_vcpus[0].kvm
    a = k.arch
    tlbsx_r3 = 0x7C000724 | 3 << 11
    k.cpu.set_gpr(3, 0x70000ABC)  # nothing maps it
    a.mas4, a.mas6 = 0x0000050A, 0x001A0001
    seen = []
    for _ in range(2):
        a.mas2, a.mas7_3 = 0x70000ABC, 0x12345FFF
        kvm_emulate.emulate_privileged(k, tlbsx_r3, Priv.TLBSX)
        seen.append((a.mas0, a.mas1, a.mas2, a.mas7_3))
    assert seen == [
        (0x00000001, 0x001A1500, 0x7000000A, 0x3C0),
        (0x00010002, 0x001A1500, 0x7000000A, 0x3C0),
    ]
    a.mas4 |= 0x10000000  # TLBSELD = 1: TLB1, victim 0, NV 0
    kvm_emulate.emulate_privileged(k, tlbsx_r3, Priv.TLBSX)
    assert a.mas0 == 0x10000000


# -- the 64-bit cores (e5500, e6500), found by the differential against qemu-system-ppc64 ------


def test_a_64_bit_mtspr_of_a_u32_register_keeps_the_low_word_and_get_sregs_narrows() -> None:
    """e6500 seed 2 (before the generator wrote 32-bit SPRs zero-extended): a 64-bit ``mtspr
    ESR`` stored all 64 bits, and KVM_GET_SREGS then raised packing them into the ``__u32``
    field. The kernel keeps ESR in a u32 (the low word survives); CSRR1 is an ``unsigned long``
    that mfspr gives back whole and ``kvm_sregs`` carries cut, as C's assignment cuts it."""
    vm = EmulatedBookeVm("e5500")
    v = vm.emulated_vcpus[0]
    k = v.kvm
    assert kvm_spr.mtspr(k, regs.SPRN_ESR, 0xFFFFFFFF_FFFFBE15)
    assert kvm_spr.mfspr(k, regs.SPRN_ESR) == 0xFFFFBE15
    assert kvm_spr.mtspr(k, regs.SPRN_CSRR1, 0x12345678_9ABCDEF0)
    assert kvm_spr.mfspr(k, regs.SPRN_CSRR1) == 0x12345678_9ABCDEF0
    assert kvm_spr.mtspr(k, regs.SPRN_IVOR0 + 6, 0xFFFFFFFF_00000700)  # u32 ivor[] too
    sregs = v.codec.get_sregs(k)
    assert v.codec.s["csrr1"].get(sregs) == 0x9ABCDEF0
    assert v.codec.s["esr"].get(sregs) == 0xFFFFBE15
    assert v.codec.s_ivor_low[6].get(sregs) == 0x700


def test_td_and_tdi_are_traps_on_the_64_bit_cores_and_illegal_on_e500mc() -> None:
    """e6500 seed 20, stop 2: a taken ``td 31, r0, r0`` was logged with ESR[PIL] (0x08000000);
    QEMU, like the hardware, gives ESR[PTR] (0x02000000), which KVM hands on (``fault_esr``).
    e500mc has no ``td``: there it stays an illegal instruction."""
    td, tdi = 0x7FE00088, 0x0BE00000  # td 31, 0, 0; tdi 31, 0, 0
    for word in (td, tdi):
        assert isa.is_trap(word, is64=True) and not isa.is_trap(word, is64=False)


def test_e6500_tlbncfg_are_e6500s_own_with_kvm_geometry_and_no_pt_or_ind() -> None:
    """e6500 seed 7, stop 7: TLB1CFG read 0x401cc040 (e500mc's) on the host. ``vcpu_mmu_init``
    starts from the host's own TLBnCFG (e6500: 0x08052400, 0x40028040), puts KVM's guest TLB
    geometry in and, on an MMU v2 core, clears TLBnCFG_PT and TLBnCFG_IND; e5500 has e500mc's."""
    k6 = EmulatedBookeVm("e6500").emulated_vcpus[0].kvm
    assert kvm_spr.mfspr(k6, regs.SPRN_TLB0CFG) == 0x04012200
    assert kvm_spr.mfspr(k6, regs.SPRN_TLB1CFG) == 0x40008040
    k5 = EmulatedBookeVm("e5500").emulated_vcpus[0].kvm
    assert kvm_spr.mfspr(k5, regs.SPRN_TLB0CFG) == 0x04110200
    assert kvm_spr.mfspr(k5, regs.SPRN_TLB1CFG) == 0x401CC040


@pytest.mark.qemu
@no_qemu64
@pytest.mark.parametrize(("core", "seed"), [("e6500", 2), ("e6500", 20), ("e5500", 20)])
def test_the_64_bit_seed_that_found_it_now_matches_qemu(core: str, seed: int) -> None:
    assert undocumented(seed, core) == []
