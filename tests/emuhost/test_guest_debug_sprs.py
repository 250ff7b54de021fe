"""Guest mtspr/mfspr of the debug SPRs: booke_emulate.c kvmppc_booke_emulate_mtspr/mfspr
(docs/reference/kvm-debug-abi.md §3.6),
and MSR[DE] protection (booke.c kvm_guest_protect_msr, kvmppc_vcpu_sync_debug; §3.2)."""

from __future__ import annotations

from guestdbg.kvm.constants import KVM_GUESTDBG_ENABLE
from guestdbg_booke import abi, regs

from .machine import Machine, is_hv

HOST_SW = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_guest_debug_spr_writes_land_when_the_host_is_not_debugging(core: str) -> None:
    m = Machine("dbgspr", core)
    dbcr0, dbcr1, dbcr2, iac1, dac1, dbsr, _msr = m.checkpoints()
    # DBCR0 is masked to IDM|IC|BT|TIE|IACn|DACnR/W: the guest's RET bit is dropped
    assert dbcr0 == regs.DBCR0_IDM | regs.DBCR0_IAC1 | regs.DBCR0_DAC1R
    assert (dbcr1, dbcr2, iac1, dac1, dbsr) == (0x80000000, 0x80000000, 0x00100100, 0x00200000, 0)
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == 0x00100100


def test_guest_debug_spr_writes_are_dropped_and_dbcr0_reads_edm_while_the_host_debugs(
    core: str,
) -> None:
    # "If userspace is debugging guest then guest can not access debug registers."
    m = Machine("dbgspr", core)
    m.set_debug(HOST_SW)
    dbcr0, dbcr1, dbcr2, iac1, dac1, dbsr, _msr = m.checkpoints()
    assert dbcr0 == regs.DBCR0_EDM
    assert (iac1, dac1, dbsr) == (0, 0, 0)
    # what the reads show is the host's qualifier image: 0 on HV, user-only on PR
    if is_hv(core):
        assert (dbcr1, dbcr2) == (0, 0)
    else:
        assert dbcr1 == regs.DBCR1_IAC1US | regs.DBCR1_IAC2US | regs.DBCR1_IAC3US | (
            regs.DBCR1_IAC4US
        )
        assert dbcr2 == regs.DBCR2_DAC1US | regs.DBCR2_DAC2US
    assert m.one_reg(abi.KVM_REG_PPC_IAC1) == 0


def test_dbcr0_reads_without_edm_once_the_host_stops_debugging(core: str) -> None:
    m = Machine("dbgspr", core)
    m.set_debug(HOST_SW)
    m.set_debug(0)
    dbcr0 = m.checkpoints()[0]
    assert not dbcr0 & regs.DBCR0_EDM


def test_guest_can_clear_msr_de_when_the_host_is_not_debugging(core: str) -> None:
    m = Machine("dbgspr", core)
    m.set_regs(msr=regs.MSR_DE)
    msr = m.checkpoints()[-1]
    assert not msr & regs.MSR_DE


def test_hv_msrp_dep_keeps_msr_de_and_pr_hides_it_while_the_host_debugs(core: str) -> None:
    # HV: kvm_guest_protect_msr sets MSRP[DEP], so the guest's mtmsr cannot clear the DE the
    # kernel forced; PR has no protection but keeps DE in the shadow MSR, never in the guest's
    m = Machine("dbgspr", core)
    m.set_debug(HOST_SW)
    m.set_regs(msr=0)
    msr = m.checkpoints()[-1]
    if is_hv(core):
        assert msr & regs.MSR_DE and msr & regs.MSR_GS
    else:
        assert not msr & regs.MSR_DE


def test_guest_debug_spr_writes_never_reach_the_engines_own_sprs(core: str) -> None:
    # The engine runs the guest in problem state, so mtspr DBCR0/IAC1/DAC1 trap to the model;
    # Unicorn's own debug registers (whose DBCR0[IC] reports a wrong PC) stay untouched.
    m = Machine("dbgspr", core)
    m.checkpoints()
    engine = m.vcpu.engine
    for sprn in (regs.SPRN_DBCR0, regs.SPRN_IAC1, regs.SPRN_DAC1, regs.SPRN_DBCR1):
        assert engine.spr_read(sprn) == 0, hex(sprn)
