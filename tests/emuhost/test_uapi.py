"""The VM and vCPU ioctl surfaces in the kernel's byte layout: KVM_GET/SET_REGS, KVM_GET/SET_SREGS
(booke.c get/set_sregs_base/_arch206, e500mc.c/e500.c core parts), ONE_REG (kvmppc_get/set_one_reg),
KVM_CHECK_EXTENSION (powerpc.c), guest memory and KVM_TRANSLATE (e500_mmu.c)."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import pytest

from guestdbg.errors import BadAddress, InvalidRequest, KernelError
from guestdbg.kvm import constants as kc
from guestdbg.vcpu import MemorySlotsHandle, SlotInfo, VcpuHandle, VmHandle
from guestdbg_booke import abi
from guestdbg_booke.emuhost import EmulatedBookeVm, board, kvm_uapi
from guestdbg_booke.emuhost import vm as vm_mod
from guestdbg_booke.emuhost.kvm_uapi import KVM_REG_PPC_MAS2, KVM_REG_PPC_SPRG9

from .machine import CORES, CORES64, REGS, SREGS, L, Machine, is_hv

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_the_emulated_host_implements_the_vm_and_vcpu_protocols() -> None:
    vm = EmulatedBookeVm()
    assert isinstance(vm, VmHandle)
    assert isinstance(vm.vcpus[0], VcpuHandle)
    assert len(vm.vcpus[0].kvm_run) >= 4096


def test_regs_are_the_392_byte_big_endian_kvm_regs(core: str) -> None:
    m = Machine("loop", core)
    buf = m.vcpu.get_regs()
    assert len(buf) == L.sizeof(REGS) == 392
    off = L.offsetof(REGS, "gpr", 1)
    assert buf[off : off + 8] == board.BOOT_R1.to_bytes(8, "big")
    m.set_regs(r31=0x11223344, lr=0x100, ctr=7)
    assert (m.gpr(31), m.reg("lr"), m.reg("ctr")) == (0x11223344, 0x100, 7)


def test_sregs_are_1232_bytes_with_the_features_the_core_fills(core: str) -> None:
    m = Machine("loop", core)
    buf = m.vcpu.get_sregs()
    assert len(buf) == L.sizeof(SREGS) == 1232
    features = L.field(SREGS, "u", "e", "features").get(buf)
    want = abi.KVM_SREGS_E_BASE | abi.KVM_SREGS_E_ARCH206 | abi.KVM_SREGS_E_IVOR
    want |= abi.KVM_SREGS_E_ARCH206_MMU | abi.KVM_SREGS_E_PM
    want |= abi.KVM_SREGS_E_PC if is_hv(core) else abi.KVM_SREGS_E_SPE
    assert features == want  # never E_DEBUG: booke.c does not fill DBSR/DBCR/IAC/DAC there
    assert L.field(SREGS, "pvr").get(buf) == board.PVR[core]
    assert m.sreg("pir") == 0


def test_set_sregs_with_another_pvr_is_einval_and_changes_nothing(core: str) -> None:
    m = Machine("loop", core)
    buf = m.vcpu.get_sregs()
    L.field(SREGS, "pvr").put(buf, 0x12345678)
    L.field(SREGS, "u", "e", "esr").put(buf, 0x800000)
    with pytest.raises(KernelError) as e:
        m.vcpu.set_sregs(bytes(buf))
    assert (e.value.ioctl, e.value.errno) == ("KVM_SET_SREGS", errno.EINVAL)
    assert m.sreg("esr") == 0


def test_set_sregs_with_a_foreign_pir_fails_after_the_base_group_applied(core: str) -> None:
    # set_sregs_base runs before set_sregs_arch206's PIR check; nothing is rolled back
    m = Machine("loop", core)
    buf = m.vcpu.get_sregs()
    L.field(SREGS, "u", "e", "esr").put(buf, 0x800000)
    L.field(SREGS, "u", "e", "pir").put(buf, 5)
    L.field(SREGS, "u", "e", "ivpr").put(buf, 0x200000)
    with pytest.raises(KernelError):
        m.vcpu.set_sregs(bytes(buf))
    assert (m.sreg("esr"), m.sreg("ivpr")) == (0x800000, 0x55550000)


def test_set_sregs_ivors_follow_the_ivor_feature_bit(core: str) -> None:
    m = Machine("loop", core)
    buf = m.vcpu.get_sregs()
    L.field(SREGS, "u", "e", "ivor_low", 6).put(buf, 0x600)
    m.vcpu.set_sregs(bytes(buf))
    assert m.sreg("ivor_low", 6) == 0x600
    L.field(SREGS, "u", "e", "ivor_low", 6).put(buf, 0x700)
    L.field(SREGS, "u", "e", "features").put(buf, abi.KVM_SREGS_E_BASE)
    m.vcpu.set_sregs(bytes(buf))
    assert m.sreg("ivor_low", 6) == 0x600


@pytest.mark.parametrize(
    "reg_id",
    [abi.KVM_REG_PPC_IAC3, abi.KVM_REG_PPC_IAC4, abi.KVM_REG_PPC_DBSR, abi.KVM_REG_PPC_EPCR],
)
def test_one_reg_ids_booke_does_not_handle_are_einval(core: str, reg_id: int) -> None:
    # IAC3/4 need CONFIG_PPC_ADV_DEBUG_IACS > 2; DBSR has no case; EPCR is CONFIG_64BIT only
    if reg_id == abi.KVM_REG_PPC_EPCR and core in CORES64:
        return  # a 64-bit host has it (tests/emuhost64/test_hosts64.py)
    m = Machine("loop", core)
    with pytest.raises(KernelError) as e:
        m.vcpu.get_one_reg(reg_id)
    assert (e.value.ioctl, e.value.errno) == ("KVM_GET_ONE_REG", errno.EINVAL)


def test_one_reg_iac_and_dac_round_trip_and_keep_32_bits(core: str) -> None:
    m = Machine("loop", core)
    m.vcpu.set_one_reg(abi.KVM_REG_PPC_DAC2, 0x1_0000_2000)
    # an unsigned long: 32 bits on a 32-bit host, all 64 on e5500/e6500
    assert m.one_reg(abi.KVM_REG_PPC_DAC2) == (0x2000 if core in CORES else 0x1_0000_2000)
    m.vcpu.set_one_reg(KVM_REG_PPC_MAS2, 0xE000000A)
    assert m.one_reg(KVM_REG_PPC_MAS2) == 0xE000000A
    if is_hv(core):
        m.vcpu.set_one_reg(KVM_REG_PPC_SPRG9, 9)
        assert m.one_reg(KVM_REG_PPC_SPRG9) == 9
    else:
        with pytest.raises(KernelError):
            m.one_reg(KVM_REG_PPC_SPRG9)


def test_check_extension_answers_as_booke_does() -> None:
    vm = EmulatedBookeVm()
    assert vm.check_extension(kc.KVM_CAP_SET_GUEST_DEBUG) == 1
    assert vm.check_extension(kc.KVM_CAP_PPC_GUEST_DEBUG_SSTEP) == 1
    assert vm.check_extension(kc.KVM_CAP_ONE_REG) == 1
    for cap in (
        kc.KVM_CAP_SET_GUEST_DEBUG2,
        kc.KVM_CAP_GUEST_DEBUG_HW_BPS,
        kc.KVM_CAP_GUEST_DEBUG_HW_WPS,
        kc.KVM_CAP_EXCEPTION_PAYLOAD,
        kc.KVM_CAP_VCPU_EVENTS,
        kc.KVM_CAP_DEBUGREGS,
    ):
        assert vm.check_extension(cap) == 0, cap
    with pytest.raises(KernelError) as e:
        vm.enable_cap(kc.KVM_CAP_EXCEPTION_PAYLOAD, 1)
    assert e.value.errno == errno.EINVAL


def test_memory_slots_answer_as_booke_kvm_does_no_read_only_slots_dirty_logging_accepted(
    core: str,
) -> None:
    """docs/reference/kvm-debug-abi.md §11: BookE KVM reports no KVM_CAP_READONLY_MEM and
    ``check_memory_region_flags`` refuses KVM_MEM_READONLY with EINVAL, changing nothing;
    KVM_MEM_LOG_DIRTY_PAGES is accepted on every arch."""
    vm = EmulatedBookeVm(core, ram_size=0x100000)
    assert vm.check_extension(kc.KVM_CAP_READONLY_MEM) == 0
    before = vm.memory.slots
    for flags in (kc.KVM_MEM_READONLY, kc.KVM_MEM_READONLY | kc.KVM_MEM_LOG_DIRTY_PAGES, 0x4):
        with pytest.raises(KernelError) as e:
            vm.memory.add_slot(0x100000, 0x1000, flags=flags)
        assert (e.value.ioctl, e.value.errno) == ("KVM_SET_USER_MEMORY_REGION", errno.EINVAL)
    assert vm.memory.slots == before
    logged = vm.memory.add_slot(0x100000, 0x1000, flags=kc.KVM_MEM_LOG_DIRTY_PAGES)
    assert (logged.gpa, logged.flags) == (0x100000, kc.KVM_MEM_LOG_DIRTY_PAGES)
    assert vm.memory.slots == (*before, logged)


def test_booke_slots_are_deleted_and_re_created_as_the_kernel_does_but_never_read_only(
    core: str,
) -> None:
    """docs/reference/kvm-debug-abi.md §11.3: through ``set_memory_slot`` too, KVM_MEM_READONLY
    is EINVAL and nothing changes; the RAM slot is deleted (the VMM's buffer stays) and
    re-created in two pieces over the same bytes, and the guest still runs to its end."""
    m = Machine("loop", core)
    vm = m.vm
    assert isinstance(vm, MemorySlotsHandle)
    assert vm.check_extension(kc.KVM_CAP_READONLY_MEM) == 0
    (ram,) = vm.memory_slots()
    before = vm.memory_slots()
    with pytest.raises(KernelError) as e:
        vm.set_memory_slot(SlotInfo(1, kc.KVM_MEM_READONLY, ram.end, 0x1000, ram.userspace_addr))
    assert (e.value.ioctl, e.value.errno) == ("KVM_SET_USER_MEMORY_REGION", errno.EINVAL)
    assert vm.memory_slots() == before
    half = ram.size // 2
    vm.write_phys(half - 2, b"wxyz")  # far above the guest's image
    vm.set_memory_slot(SlotInfo(ram.slot, 0, ram.gpa, 0, ram.userspace_addr))
    with pytest.raises(BadAddress):
        vm.read_phys(0, 4)
    vm.set_memory_slot(SlotInfo(0, 0, 0, half, ram.userspace_addr))
    vm.set_memory_slot(SlotInfo(1, 0, half, ram.size - half, ram.userspace_addr + half))
    assert [(s.gpa, s.size) for s in vm.memory_slots()] == [(0, half), (half, ram.size - half)]
    assert vm.read_phys(half - 2, 4) == b"wxyz"  # one read across both, the same bytes
    m.run_to_done()


def test_guest_memory_outside_ram_is_a_bad_address_and_nothing_is_written() -> None:
    vm = EmulatedBookeVm(ram_size=1 << 20)
    with pytest.raises(BadAddress):
        vm.read_phys((1 << 20) - 2, 4)
    with pytest.raises(BadAddress):
        vm.write_phys((1 << 20) - 2, b"abcd")
    assert vm.read_phys((1 << 20) - 2, 2) == b"\0\0"


def test_bad_vm_parameters_are_refused() -> None:
    for kwargs in ({"core": "e600"}, {"smp": 0}, {"ram_size": 12345}, {"sw_break_flavour": "x"}):
        with pytest.raises(InvalidRequest):
            EmulatedBookeVm(**kwargs)  # type: ignore[arg-type]


def test_translate_follows_the_guest_tlb(core: str) -> None:
    m = Machine("loop", core)
    assert m.vcpu.translate(0x123450) == 0x123450  # the 1:1 boot mapping (TLB1 entry 0)
    assert m.vcpu.translate(0x08000000) is None  # beyond it
    assert m.vcpu.translate(0xE0000000) is None
    m.run_to_done()  # the guest maps its host-I/O page with tlbwe
    assert m.vcpu.translate(0xE0000004) == 0xE0000004


def test_the_models_own_uapi_numbers_match_the_powerpc_headers(tmp_path: Path) -> None:
    # ONE_REG ids and capability numbers the model answers for, compiled against the real
    # uapi headers for 32-bit big-endian PowerPC
    gcc = shutil.which("powerpc-linux-gnu-gcc")
    if gcc is None:
        pytest.skip("no powerpc-linux-gnu-gcc")
    names = {n: v for n, v in vars(kvm_uapi).items() if n.startswith("KVM_REG_PPC_")}
    names |= {n: v for n, v in vars(vm_mod).items() if n.startswith("KVM_CAP_")}
    src = tmp_path / "check.c"
    src.write_text(
        "#include <linux/kvm.h>\n"
        + "".join(f'_Static_assert({n} == {v:#x}ULL, "{n}");\n' for n, v in names.items())
    )
    out = subprocess.run([gcc, "-fsyntax-only", str(src)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(names) >= 20


def test_get_regs_shows_every_change_since_the_last_read(core: str) -> None:
    """The model keeps what KVM_GET_REGS returned until something can change it: a run, a
    KVM_SET_REGS, KVM_SET_GUEST_DEBUG, a migration load, a boot. Each must show."""
    m = Machine("loop", core)
    entry = m.pc
    assert bytes(m.vcpu.get_regs()) == bytes(m.vcpu.get_regs())
    m.set_debug(kc.KVM_GUESTDBG_ENABLE | kc.KVM_GUESTDBG_SINGLESTEP)
    m.set_regs()  # the MSR write that makes MSR[DE] stick (kvmppc_set_msr)
    assert m.run().reason == kc.KVM_EXIT_DEBUG
    assert m.pc == entry + 4
    m.set_regs(r31=0x55)
    assert m.gpr(31) == 0x55
    saved = m.vcpu.save()
    m.set_regs(r31=0x66)
    assert m.gpr(31) == 0x66
    m.vcpu.load(saved)
    assert (m.gpr(31), m.pc) == (0x55, entry + 4)
    m.vm.load_elf(m.elf)
    assert (m.pc, m.gpr(1), m.gpr(31)) == (entry, board.BOOT_R1, 0)
