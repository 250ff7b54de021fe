"""Registers as the guest sees them (issue 12), on the emulated x86-64 host and on this
machine's /dev/kvm alike: every register KVM_GET_REGS, KVM_GET_SREGS and KVM_GET_DEBUGREGS
report equals what the guest's own instructions read (its GPRs, PUSHFQ, MOV from CR0/CR3/CR4,
RDMSR EFER, MOV from DR0-3/DR7, segment selectors), and what the host writes through
KVM_SET_REGS/KVM_SET_DEBUGREGS is what the guest reads and computes with next (``adc`` adds
the RFLAGS.CF the host wrote)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guestdbg.kvm import constants as C

from .machines import LAYOUT, Machine

GPRS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14"]  # fmt: skip
TABLE = [*GPRS, "rflags", "cr0", "cr3", "cr4", "efer", "dr0", "dr1", "dr2", "dr3", "dr7",
         "cs", "ss", "ds"]  # fmt: skip
"""What ``store_all`` in regs_mirror.S stores, 8 bytes each, in this order."""
REGS = "struct kvm_regs"
SREGS = "struct kvm_sregs"
DEBUGREGS = "struct kvm_debugregs"


def guest_table(m: Machine, name: str) -> dict[str, int]:
    raw = m.vm.read_phys(m.sym(name), 8 * len(TABLE))
    return {f: int.from_bytes(raw[8 * i : 8 * i + 8], "little") for i, f in enumerate(TABLE)}


def host_view(m: Machine) -> dict[str, int]:
    v = m.vcpu
    regs, sregs = v.get_regs(), v.get_sregs()
    dbg = v.get_debugregs()  # type: ignore[attr-defined]
    out = {f: LAYOUT.field(REGS, f).get(regs) for f in [*GPRS, "rflags"]}
    out.update({f: LAYOUT.field(SREGS, f).get(sregs) for f in ("cr0", "cr3", "cr4", "efer")})
    out.update({f"dr{n}": LAYOUT.field(DEBUGREGS, "db", n).get(dbg) for n in range(4)})
    out["dr7"] = LAYOUT.field(DEBUGREGS, "dr7").get(dbg)
    for seg in ("cs", "ss", "ds"):
        out[seg] = LAYOUT.field(SREGS, seg, "selector").get(sregs)
    return out


@pytest.fixture
def at_first_halt(make_machine: Callable[[str], Machine]) -> Machine:
    m = make_machine("regs_mirror")
    m.start_at("start")
    assert m.run() == C.KVM_EXIT_HLT
    assert m.reg("rip") == m.sym("first_halt") + 1
    return m


def test_every_register_the_host_reads_equals_what_the_guest_read(at_first_halt: Machine) -> None:
    m = at_first_halt
    seen = guest_table(m, "seen1")
    assert seen["rflags"] & 1, "the guest's cmp set CF"
    assert host_view(m) == seen


@pytest.mark.parametrize("carry", [0, 1])
def test_every_register_the_host_writes_is_what_the_guest_reads_next(
    at_first_halt: Machine, carry: int
) -> None:
    m = at_first_halt
    want = {name: 0x0101010101010101 * (n + 1) for n, name in enumerate(GPRS)}
    rflags = 0x2 | 0x40 | carry  # the reserved bit, ZF and CF as asked
    m.set_regs(**want, rflags=rflags, rip=m.sym("second"))
    dbg = m.vcpu.get_debugregs()  # type: ignore[attr-defined]
    drs = [0x10000 + 0x100 * n for n in range(4)]
    for n, value in enumerate(drs):
        LAYOUT.field(DEBUGREGS, "db", n).put(dbg, value)
    LAYOUT.field(DEBUGREGS, "dr7").put(dbg, 0x400)  # nothing enabled: no breakpoint fires
    m.vcpu.set_debugregs(bytes(dbg))  # type: ignore[attr-defined]
    assert m.run() == C.KVM_EXIT_HLT
    seen = guest_table(m, "seen2")
    assert {k: seen[k] for k in want} == want
    assert seen["rflags"] & 0xCD5 == rflags & 0xCD5  # the status flags the host wrote
    assert [seen[f"dr{n}"] for n in range(4)] == drs
    assert seen["dr7"] & 0xFF == 0
    assert m.u64("used") == carry, "adc $0 adds the CF the host wrote"
