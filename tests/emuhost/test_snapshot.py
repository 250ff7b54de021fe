"""snapshot()/restore(): a guest moved to a new VM mid-run continues as if it never moved, with
the kernel's per-vCPU state (pending interrupts, the debug register image, a half-served MMIO
load) carried along."""

from __future__ import annotations

import pytest

from guestdbg.errors import MigrationError
from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_GUESTDBG_ENABLE
from guestdbg_booke import abi
from guestdbg_booke.emuhost import EmulatedBookeVm

from .machine import RUN, L, Machine, read_exit

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_a_guest_moved_at_a_breakpoint_finishes_the_same_on_the_new_vm(core: str) -> None:
    m = Machine("loop", core)
    m.set_debug(KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP,
                [(m.sym["bp_here"], abi.KVMPPC_DEBUG_BREAKPOINT)])  # fmt: skip
    m.set_regs()
    for _ in range(3):
        assert m.run().reason == KVM_EXIT_DEBUG
    snap = m.vm.snapshot()
    vm2 = EmulatedBookeVm.from_snapshot(snap)
    v2 = vm2.vcpus[0]
    # the host's breakpoint moved too: the new VM stops at it again, in the same iteration
    v2.run()
    ex = read_exit(v2.kvm_run)
    assert (ex.reason, ex.address) == (KVM_EXIT_DEBUG, m.sym["bp_here"])
    assert L.field("struct kvm_regs", "gpr", 4).get(v2.get_regs()) == m.gpr(4)
    assert v2.get_one_reg(abi.KVM_REG_PPC_IAC1) == m.sym["bp_here"]
    v2.set_guest_debug(bytes(264))
    m.set_debug(0)
    m2 = Machine.__new__(Machine)
    m2.vm, m2.vcpu, m2.sym = vm2, vm2.emulated_vcpus[0], m.sym
    assert m2.run_to_done() == m.run_to_done() == 100


def test_a_half_served_mmio_load_completes_on_the_new_vm(core: str) -> None:
    m = Machine("mmio", core)
    for _ in range(5):
        m.run()  # four stores, then the lwz exit
    vm2 = EmulatedBookeVm.from_snapshot(m.vm.snapshot())
    v2 = vm2.emulated_vcpus[0]
    data = L.offsetof(RUN, "mmio", "data")
    v2.kvm_run[data : data + 4] = bytes.fromhex("0badf00d")
    v2.run()
    assert L.field("struct kvm_regs", "gpr", 10).get(v2.get_regs()) == 0x0BADF00D


def test_guest_sprg_values_survive_including_those_read_without_a_trap(core: str) -> None:
    m = Machine("loop", core)
    m.set_regs(sprg4=0x44, sprg7=0x77, sprg3=0x33)
    vm2 = EmulatedBookeVm.from_snapshot(m.vm.snapshot())
    v2 = vm2.emulated_vcpus[0]
    rg = v2.get_regs()
    assert [L.field("struct kvm_regs", f"sprg{n}").get(rg) for n in (3, 4, 7)] == [0x33, 0x44, 0x77]
    assert v2.engine.spr_read(0x104) == 0x44  # the problem-state alias the guest reads directly


def test_a_snapshot_from_another_shape_of_vm_is_refused_and_changes_nothing() -> None:
    snap = EmulatedBookeVm("e500mc").snapshot()
    vm = EmulatedBookeVm("e500v2")
    with pytest.raises(MigrationError):
        vm.restore(snap)
    with pytest.raises(MigrationError):
        EmulatedBookeVm.from_snapshot({"format": "something else"})
