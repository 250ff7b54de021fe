"""KVM_SET_GUEST_DEBUG as booke.c kvm_arch_vcpu_ioctl_set_guest_debug does it
(docs/reference/kvm-debug-abi.md §3.1)."""

from __future__ import annotations

import errno

import pytest

from guestdbg.errors import InvalidRequest, KernelError
from guestdbg.kvm.constants import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg_booke import abi

from .machine import Machine, is_hv

HW = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
BP = abi.KVMPPC_DEBUG_BREAKPOINT
WW = abi.KVMPPC_DEBUG_WATCH_WRITE
WR = abi.KVMPPC_DEBUG_WATCH_READ

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_third_iac_is_einval_and_not_rolled_back(core: str) -> None:
    # booke.c kvmppc_booke_add_breakpoint: index 2 is -EINVAL on e500 (ADV_DEBUG_IACS = 2), and
    # the ioctl returns without undoing guest_debug, MSRP[DEP] or the IACs already programmed
    m = Machine("loop", core)
    s = m.sym
    with pytest.raises(KernelError) as e:
        m.set_debug(HW, [(s["bp_here"], BP), (s["after_loop"], BP), (s["done"], BP)])
    assert (e.value.ioctl, e.value.errno) == ("KVM_SET_GUEST_DEBUG", errno.EINVAL)
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == s["bp_here"]
    assert m.one_reg(abi.KVM_REG_PPC_IAC2) == s["after_loop"]
    m.set_regs()
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, BP, s["bp_here"])


def test_third_dac_is_einval_after_two_dacs_are_armed(core: str) -> None:
    # booke.c kvmppc_booke_add_watchpoint: index 2 is -EINVAL, DAC1/DAC2 stay
    m = Machine("loop", core)
    s = m.sym
    with pytest.raises(KernelError) as e:
        m.set_debug(HW, [(s["counter"], WR), (s["other"], WW), (s["other"] + 4, WW)])
    assert e.value.errno == errno.EINVAL
    assert (m.one_reg(abi.KVM_REG_PPC_DAC1), m.one_reg(abi.KVM_REG_PPC_DAC2)) == (
        s["counter"],
        s["other"],
    )
    m.set_regs()
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, WR, s["counter"])


def test_unknown_type_bit_is_einval_but_earlier_entries_stay_armed(core: str) -> None:
    m = Machine("loop", core)
    s = m.sym
    with pytest.raises(KernelError) as e:
        m.set_debug(HW, [(s["bp_here"], BP), (s["counter"], 0x1)])
    assert e.value.errno == errno.EINVAL
    m.set_regs()
    ex = m.run()
    assert (ex.reason, ex.address) == (KVM_EXIT_DEBUG, s["bp_here"])


def test_only_bp0_to_bp3_are_read(core: str) -> None:
    # the loop runs n < KVMPPC_BOOKE_IAC_NUM + KVMPPC_BOOKE_DAC_NUM: bp[4..15] are never looked at
    m = Machine("loop", core)
    s = m.sym
    bps = [(0, abi.KVMPPC_DEBUG_NONE)] * 4 + [(s["bp_here"], BP), (s["loop"], 0xFF)]
    m.set_debug(HW, bps)
    m.set_regs()
    assert m.run_to_done() == 100


def test_none_entries_are_skipped_and_slots_fill_in_order(core: str) -> None:
    m = Machine("loop", core)
    s = m.sym
    m.set_debug(HW, [(0, abi.KVMPPC_DEBUG_NONE), (s["after_loop"], BP), (s["done"], BP)])
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == s["after_loop"]
    assert m.one_reg(abi.KVM_REG_PPC_IAC2) == s["done"]


def test_breakpoint_bit_with_watch_bits_takes_an_iac(core: str) -> None:
    m = Machine("loop", core)
    s = m.sym
    m.set_debug(HW, [(s["bp_here"], BP | WW)])
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == s["bp_here"]
    assert m.one_reg(abi.KVM_REG_PPC_DAC1) == 0
    m.set_regs()
    ex = m.run()
    assert (ex.status, ex.address) == (BP, s["bp_here"])


def test_disabling_clears_dbcr0_and_guest_debug_but_leaves_the_iac_value(core: str) -> None:
    # !ENABLE: dbg_reg.dbcr0 = 0, guest_debug = 0; DBCR1/2, IACs, DACs untouched
    m = Machine("loop", core)
    s = m.sym
    m.set_debug(HW, [(s["bp_here"], BP)])
    m.set_debug(0)
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == s["bp_here"]
    m.set_regs()
    assert m.run_to_done() == 100


def test_control_is_stored_without_a_reserved_bit_check(core: str) -> None:
    # unlike arm64's VALID_MASK check, BookE stores any control word
    m = Machine("loop", core)
    m.set_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | 0x7FF00000)
    m.set_regs()
    ex = m.run()
    assert (ex.reason, ex.status, ex.address) == (KVM_EXIT_DEBUG, 0, m.pc)


def test_wrong_struct_size_is_refused_and_changes_nothing(core: str) -> None:
    # refused before the model sees it, as guestdbg.kvm.device refuses it before the kernel does
    m = Machine("loop", core)
    with pytest.raises(InvalidRequest, match="KVM_SET_GUEST_DEBUG takes 264 bytes, got 72"):
        m.vcpu.set_guest_debug(bytes(72))
    m.set_regs()
    ex = m.run()
    assert ex.reason == KVM_EXIT_MMIO


def test_msr_de_is_forced_only_at_the_next_full_msr_write(core: str) -> None:
    # kvmppc_vcpu_sync_debug runs from kvmppc_set_msr, not from the ioctl: until the VMM writes
    # the registers the guest runs with MSR[DE] = 0 and the IAC event stays imprecise (no exit);
    # the imprecise DBSR bits are dropped when KVM_RUN returns (kvmppc_booke_vcpu_put)
    m = Machine("loop", core)
    m.set_debug(HW, [(m.sym["bp_here"], BP)])
    assert m.run_to_done() == 100
    m = Machine("loop", core)
    m.set_debug(HW, [(m.sym["bp_here"], BP)])
    m.set_regs()
    assert m.run().reason == KVM_EXIT_DEBUG


def test_hv_forces_msr_de_into_the_guest_msr_and_pr_hides_it(core: str) -> None:
    # HV: "sync MSR_DE into the guest visible MSR"; PR: shadow_msr gets DE, the guest's MSR loses it
    m = Machine("loop", core)
    m.set_debug(KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP)
    m.set_regs(msr=0x200)
    de = bool(m.reg("msr") & 0x200)
    assert de is (is_hv(core))
