"""Registers as the guest sees them (issue 12): every register the emulated host exposes through
KVM_GET_REGS, KVM_GET_SREGS and KVM_GET_ONE_REG equals what the guest's own instructions read
(``mfxer``, ``mfcr``, ``mfmsr``, ``mfspr``), and a value written through KVM_SET_REGS/SREGS/ONE_REG
is what the guest's next instructions read and use.

The two sides are different code paths of the model (the ioctl codec and the guest's emulated or
native SPR accesses), so the test finds a register either side gets wrong. XER is the case that
found it: Unicorn keeps SO/OV/CA outside the XER its register API returns, so KVM_GET_REGS
showed 0 after the guest's ``addic`` had set CA, and KVM_SET_REGS could not set CA at all.
"""

from __future__ import annotations

import pytest

from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT, HOSTIO_DONE
from guestdbg_booke.emuhost.kvm_uapi import KVM_REG_PPC_TCR

from .machine import REGS, SREGS, L, Machine

REG_FIELDS = ["xer", "cr", "lr", "ctr", "msr", "srr0", "srr1"]
SREG_FIELDS = ["csrr0", "csrr1", "esr", "dear", "ivpr"]
SPRG = [f"sprg{n}" for n in range(8)]
TABLE = [*REG_FIELDS, *SREG_FIELDS, "pid", "tcr", *SPRG]
"""The order in which the guest stores what it reads (``READ_ALL`` in regs_mirror.S)."""
GPRS_AT = 0x80
FIRST_GPR = 13


def guest_table(m: Machine, name: str) -> dict[str, int]:
    base = m.sym[name]
    words = m.vm.read_phys(base, GPRS_AT + 4 * (32 - FIRST_GPR))
    out = {f: int.from_bytes(words[4 * i : 4 * i + 4], "big") for i, f in enumerate(TABLE)}
    for n in range(FIRST_GPR, 32):
        at = GPRS_AT + 4 * (n - FIRST_GPR)
        out[f"r{n}"] = int.from_bytes(words[at : at + 4], "big")
    return out


def host_view(m: Machine) -> dict[str, int]:
    v = m.vcpu
    regs = v.get_regs()
    sregs = v.get_sregs()
    out = {f: L.field(REGS, f).get(regs) for f in [*REG_FIELDS, "pid", *SPRG]}
    out.update({f: L.field(SREGS, "u", "e", f).get(sregs) for f in SREG_FIELDS})
    out["tcr"] = v.get_one_reg(KVM_REG_PPC_TCR)
    out.update({f"r{n}": L.field(REGS, "gpr", n).get(regs) for n in range(FIRST_GPR, 32)})
    return out


def run_to(m: Machine, where: int) -> None:
    ex = m.run()
    assert ex.reason == KVM_EXIT_MMIO and ex.mmio_addr == where, ex


@pytest.fixture
def at_checkpoint() -> Machine:
    m = Machine("regs_mirror", "e500mc")
    run_to(m, HOSTIO_CHECKPOINT)
    return m


def test_every_register_the_host_reads_equals_what_the_guest_read(at_checkpoint: Machine) -> None:
    m = at_checkpoint
    seen = guest_table(m, "seen1")
    assert seen["xer"] == 0xE0000000, "the guest's own addic/addo set SO, OV and CA"
    assert host_view(m) == seen


def test_xer_ca_written_by_the_host_is_what_the_guests_addze_adds(
    at_checkpoint: Machine,
) -> None:
    m = at_checkpoint
    m.set_regs(xer=0x20000005)  # CA and a byte count
    run_to(m, HOSTIO_DONE)
    assert guest_table(m, "seen2")["xer"] == 0x20000005
    used = m.vm.read_phys(m.sym["used"], 12)
    assert int.from_bytes(used[0:4], "big") == 1, "addze r10 = 0 + CA"
    assert int.from_bytes(used[8:12], "big") == 0x5, "0 + CA carries nothing out: CA = 0"


def test_every_register_the_host_writes_is_what_the_guest_reads_next(
    at_checkpoint: Machine,
) -> None:
    m = at_checkpoint
    v = m.vcpu
    want = {"xer": 0x80000000, "cr": 0x89ABCDE2, "lr": 0x00101234, "ctr": 0x0000BEEF,
            "srr0": 0x00102000, "srr1": 0x00001000, "pid": 0}  # fmt: skip
    want.update({f"sprg{n}": 0x5500 + n for n in range(8)})
    want.update({f"r{n}": 0x77000000 + n for n in range(FIRST_GPR, 31)})
    m.set_regs(**want)
    swant = {"csrr0": 0x00103000, "csrr1": 0x00002000, "esr": 0x02000000,
             "dear": 0x00ABC000, "ivpr": 0x00200000}  # fmt: skip
    sregs = v.get_sregs()
    for f, value in swant.items():
        L.field(SREGS, "u", "e", f).put(sregs, value)
    v.set_sregs(bytes(sregs))
    v.set_one_reg(KVM_REG_PPC_TCR, 0x83000000)
    msr = m.reg("msr")
    run_to(m, HOSTIO_DONE)
    seen = guest_table(m, "seen2")
    expected = {**want, **swant, "tcr": 0x83000000, "msr": msr}
    expected["r31"] = m.sym["seen2"]  # the guest's own table pointer
    assert {k: seen[k] for k in expected} == expected
    used = m.vm.read_phys(m.sym["used"], 8)
    assert int.from_bytes(used[0:4], "big") == 0, "XER[CA] was written 0: addze adds nothing"
    cr = int.from_bytes(used[4:8], "big")
    assert cr == want["cr"] ^ 1, "crxor 31,31,30: cr7[SO] ^= cr7[EQ] of the CR the host wrote"


def test_a_32_bit_host_keeps_the_low_word_of_each_register_written(
    at_checkpoint: Machine,
) -> None:
    """``struct kvm_regs`` holds ``__u64``s; e500mc's kernel is 32-bit, so each register keeps
    the low word of what KVM_SET_REGS gives it (``kvm_arch_vcpu_ioctl_set_regs`` assigns them
    to ``unsigned long`` and ``u32`` fields). Upper words set here must change nothing the
    guest sees."""
    m = at_checkpoint
    v = m.vcpu
    regs = v.get_regs()
    want = {"lr": 0x00101234, "ctr": 0x0000BEEF, "srr0": 0x00102000, "sprg4": 0x5504}
    for f, value in want.items():
        L.field(REGS, f).put(regs, 0xDEAD0000 << 32 | value)
    for n in range(FIRST_GPR, 31):
        L.field(REGS, "gpr", n).put(regs, 0xABCD << 32 | 0x77000000 + n)
    v.set_regs(bytes(regs))
    back = v.get_regs()
    assert {f: L.field(REGS, f).get(back) for f in want} == want
    run_to(m, HOSTIO_DONE)
    seen = guest_table(m, "seen2")
    assert {f: seen[f] for f in want} == want
    assert [seen[f"r{n}"] for n in range(FIRST_GPR, 31)] == [
        0x77000000 + n for n in range(FIRST_GPR, 31)
    ]


def test_kvm_get_regs_xer_follows_the_guest_between_stops() -> None:
    """A cached XER must not outlive a guest run: CA set at the checkpoint, cleared by the
    guest's own instruction later, is seen cleared."""
    m = Machine("regs_mirror", "e500mc")
    run_to(m, HOSTIO_CHECKPOINT)
    assert L.field(REGS, "xer").get(m.vcpu.get_regs()) == 0xE0000000
    m.set_regs(xer=0)
    assert L.field(REGS, "xer").get(m.vcpu.get_regs()) == 0
    run_to(m, HOSTIO_DONE)
    assert L.field(REGS, "xer").get(m.vcpu.get_regs()) == 0


def test_one_reg_ids_without_a_register_are_refused() -> None:
    m = Machine("regs_mirror", "e500mc")
    with pytest.raises(Exception, match="EINVAL"):
        m.vcpu.get_one_reg(abi.KVM_REG_PPC_DEBUG_INST + 0x1000)
