"""The BookE plugin's answer to ``guestdbg_demo``: ``demo.S`` (built as a 64-bit ELF running in
64-bit mode on e5500 and e6500) and what BookE KVM does per step.

The sentences cite what the kernel does (``arch/powerpc/kvm/booke.c``) so a reader of the
transcript can follow each stop down to the function that produced it. They hold for every core:
the debug path of ``booke.c`` is the same for the 32-bit and the 64-bit ones.
"""

from __future__ import annotations

from guestdbg.demo.guest import DemoGuest

from .. import regs
from ..plugin import INFO
from .build import PACKAGE_DIR, build, build64

SYMBOLS = {
    "sw_break": "work",
    "hw_break": "round_done",
    "watched": "rounds",
    "watch_store": "rounds_store",
    "guest_trap": "guest_bug",
    "after_guest_trap": "after_bug",
    "guest_trap_every": "bug_every",
    "guest_trap_count": "bugs",
    "guest_trap_syndrome": "last_esr",
    "kernel_trap_count": "traps",
    "progress": "rounds",
}

EXPLAIN = {
    "attach": (
        "On attach the session read the guest's own IAC1-2/DAC1-2 (KVM_GET_ONE_REG) to give "
        "them back at detach; KVM BookE has no other debug state for userspace to save."
    ),
    "sw_break": (
        "The trap word is what KVM_REG_PPC_DEBUG_INST reports (0x00dddd00, an illegal "
        "instruction); with KVM_GUESTDBG_USE_SW_BP set, kvmppc_handle_exit turns its program "
        "interrupt into KVM_EXIT_DEBUG with status 0 and address = PC (booke.c)."
    ),
    "step": (
        "KVM_GUESTDBG_SINGLESTEP arms DBCR0[IC]; the instruction-complete event exits with "
        "status 0 like a software breakpoint (booke.c kvmppc_handle_debug), so the session "
        "tells them apart by its own step flag, as QEMU does."
    ),
    "hw_break": (
        "bp[0] of KVM_SET_GUEST_DEBUG, type KVMPPC_DEBUG_BREAKPOINT, became IAC1 with "
        "DBCR0[IAC1]; the exit's status carried KVMPPC_DEBUG_BREAKPOINT, address = PC. The e500 "
        "has two IACs: a third hbreak is refused (ENOSPC) and nothing changes."
    ),
    "watch": (
        "A write watchpoint is DAC1 with DBCR0[DAC1W]; the e500 takes the DAC event before the "
        "store completes (the instruction is suppressed), so the stop names the store's own "
        "PC; GDB steps it once and shows the next instruction. QEMU's stop comes one "
        "instruction later."
    ),
    "guest_trap": (
        "Only the host's table can tell the two status-0 exits apart: no host breakpoint at "
        "that address, so guestdbg delivered what the hardware would have: a program "
        "interrupt with SRR0 = the word, ESR = PIL, NIP = IVPR | IVOR6 "
        "(kvmppc_booke_irqprio_deliver). The guest's tw never left KVM_RUN: the kernel "
        "delivered it itself (ESR[PTR])."
    ),
    "detach": (
        "Detach wrote every original word back, sent KVM_SET_GUEST_DEBUG with control 0 to "
        "every vCPU, restored the guest's IAC/DAC values (KVM_SET_ONE_REG) and let the vCPUs run."
    ),
}


def demo_guest(core: str) -> DemoGuest:
    """The demo for ``core``; the 64-bit cores get the same program in 64-bit mode."""
    wide = INFO.core(core).register_bits == 64
    return DemoGuest(
        source=PACKAGE_DIR / "demo.S",
        build=build64 if wide else build,
        symbols=SYMBOLS,
        guest_trap_syndrome=regs.ESR_PIL,
        gdb_setup=("set endian big",),
        explain=EXPLAIN,
    )
