"""Differential test: the same ELF on QEMU's ppce500 (TCG, stepped through its gdbstub) and on
the emulated e500mc host (stepped with KVM_GUESTDBG_SINGLESTEP) gives the same PC and GPR trace.

Two things may differ by design and the guest avoids them: MSR (HV adds MSR[GS]) and SRR1 (QEMU puts
Book3S cause bits there, docs/reference/peers.md §1.5). An MMIO store leaves KVM_RUN as
KVM_EXIT_MMIO instead of a step exit; on QEMU it is one ordinary step (nothing is mapped there), so
it counts as one. A step over ``tw`` ends at the program handler's entry on QEMU; KVM's step is the
hardware's instruction-complete event, which comes only once the handler's first instruction
completed (docs/stepping.md), so QEMU's stop at that entry has no counterpart and is left out. QEMU
is therefore only a reference here for what the trace computes, not for where steps stop around an
exception: the fidelity differential (tests/fidelity) compares at breakpoints instead.
"""

from __future__ import annotations

import shutil

import pytest

from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_EXIT_MMIO, KVM_GUESTDBG_ENABLE
from guestdbg.kvm.constants import KVM_GUESTDBG_SINGLESTEP as SINGLESTEP
from guestdbg_booke.fidelity.qemu_oracle import QemuPpce500

from .machine import REGS, L, Machine, guest

STEPS = 2100

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-ppc") is None, reason="no qemu-system-ppc"),
]


def emulated_trace(steps: int) -> tuple[list[tuple[int, list[int]]], Machine]:
    m = Machine("diff", "e500mc")
    m.set_debug(KVM_GUESTDBG_ENABLE | SINGLESTEP)
    m.set_regs()  # the register write that forces MSR[DE] (kvmppc_vcpu_sync_debug)
    pc = L.field(REGS, "pc")
    gprs = [L.field(REGS, "gpr", n) for n in range(32)]

    def state() -> tuple[int, list[int]]:
        buf = m.vcpu.get_regs()
        return pc.get(buf), [g.get(buf) for g in gprs]

    trace = [state()]
    for _ in range(steps):
        ex = m.run()
        assert ex.reason in (KVM_EXIT_DEBUG, KVM_EXIT_MMIO)
        trace.append(state())
    return trace, m


def qemu_trace(steps: int, no_ic_event_at: int) -> list[tuple[int, list[int]]]:
    with QemuPpce500(guest("diff")) as q:

        def state() -> tuple[int, list[int]]:
            regs = q.core_registers()
            return regs["pc"], [regs[f"r{n}"] for n in range(32)]

        trace = [state()]
        while len(trace) <= steps:
            assert q.rsp.command("s").startswith("T05")
            now = state()
            if now[0] != no_ic_event_at:
                trace.append(now)
    return trace


def test_pc_and_gpr_trace_matches_qemu_ppce500_over_2100_steps() -> None:
    ours, m = emulated_trace(STEPS)
    theirs = qemu_trace(STEPS, m.sym["prog_h"])
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        pairs = enumerate(zip(a[1], b[1], strict=True))
        diff = ", ".join(f"r{i} {x:#x} vs {y:#x}" for i, (x, y) in pairs if x != y)
        assert a == b, f"step {n}: pc {a[0]:#x} vs QEMU {b[0]:#x}; {diff}"
    pcs = {pc for pc, _ in ours}
    # the trace did the work it was chosen for: traps and system calls taken by the guest's
    # handlers, and it reached the end
    assert {m.sym["prog_h"] + 4, m.sym["sc_h"], m.sym["done"]} <= pcs
    final = ours[-1][1]
    assert (final[29], final[26], final[31]) == (8, 8, 8)
