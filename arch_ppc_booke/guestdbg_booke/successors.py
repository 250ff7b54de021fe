"""Where execution can go after one PowerPC instruction: the addresses a planted-trap single
step must cover (Power ISA Book I branch forms; Book III-E return-from-interrupt and interrupt
vectors).

Used only under the guest-priority policy, where the host must not touch DBCR0[IC]. Covered:
``b``/``bl`` (target), ``bc`` (target and fall-through), ``bclr``/``bcctr`` (LR/CTR and
fall-through), ``rfi``/``rfci``/``rfmci`` (SRR0/CSRR0/MCSRR0), ``sc`` (the system-call vector and
fall-through). Any other instruction continues at PC+4 - or, if it faults, in a guest handler, in
which case the step completes when the handler returns to PC+4. ``tw``/``twi`` are such
instructions: a trap is the guest's own (a WARN or a debugger inside the guest), so stepping one
steps over the guest's program handler rather than into it, and a handler that does not return
to PC+4 leaves the step to complete at the next host stop. ``rfdi`` returns to DSRR0, which KVM
BookE does not expose, so it cannot be stepped this way (UnsupportedByArch).
"""

from __future__ import annotations

from dataclasses import dataclass

from guestdbg.errors import UnsupportedByArch


@dataclass(frozen=True, slots=True)
class CpuView:
    """The registers a successor computation may need, as KVM reports them (``__u64``).

    ``core_bits`` is the core's width (:attr:`guestdbg.arch.CoreInfo.register_bits`). On a
    64-bit core the computation mode is MSR[CM]: in 64-bit mode (CM=1) addresses are 64 bits, in
    32-bit mode (CM=0) the high-order 32 bits of every next-instruction address are 0, so a
    branch past 0xFFFFFFFC wraps (docs/reference/kvm-debug-abi.md §9.4). A return from
    interrupt continues in the mode the restored MSR (SRR1, CSRR1, MCSRR1) has, and an
    interrupt vector is entered in the mode EPCR[ICM] gives, as booke.c
    ``kvmppc_booke_irqprio_deliver`` sets MSR[CM] from it. A 32-bit core is always in 32-bit
    mode.
    """

    pc: int
    lr: int
    ctr: int
    srr0: int
    csrr0: int
    mcsrr0: int
    ivpr: int
    ivor_syscall: int
    core_bits: int = 32
    msr: int = 0
    srr1: int = 0
    csrr1: int = 0
    mcsrr1: int = 0
    epcr: int = 0

    def mask(self, msr: int) -> int:
        """The address mask of the computation mode ``msr`` selects on this core."""
        if self.core_bits == 64 and msr & MSR_CM:
            return _MASK64
        return _MASK32


MSR_CM = 1 << 31
"""MSR[CM], 64-bit computation mode (``reg_booke.h``; kept here so the module stands alone)."""
EPCR_ICM = 0x02000000
"""EPCR[ICM]: interrupts are taken in 64-bit mode (``reg_booke.h`` SPRN_EPCR_ICM)."""
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def successors(insn: int, cpu: CpuView) -> list[int]:
    pc = cpu.pc
    mask = cpu.mask(cpu.msr)
    nxt = (pc + 4) & mask
    op = insn >> 26
    if op == 18:  # b, ba, bl, bla
        li = _sext(insn & 0x03FFFFFC, 26)
        return [(li if insn & 2 else pc + li) & mask]
    if op == 16:  # bc
        bd = _sext(insn & 0xFFFC, 16)
        target = (bd if insn & 2 else pc + bd) & mask
        return sorted({target, nxt})
    if op == 19:
        xo = (insn >> 1) & 0x3FF
        if xo == 16:  # bclr
            return sorted({cpu.lr & mask & ~3, nxt})
        if xo == 528:  # bcctr
            return sorted({cpu.ctr & mask & ~3, nxt})
        if xo == 50:  # rfi: MSR = SRR1, then NIA = SRR0 in the restored mode
            return [cpu.srr0 & cpu.mask(cpu.srr1) & ~3]
        if xo == 51:  # rfci
            return [cpu.csrr0 & cpu.mask(cpu.csrr1) & ~3]
        if xo == 38:  # rfmci
            return [cpu.mcsrr0 & cpu.mask(cpu.mcsrr1) & ~3]
        if xo == 39:  # rfdi
            raise UnsupportedByArch(
                "cannot single-step rfdi with planted traps: KVM BookE does not expose DSRR0"
            )
        return [nxt]
    if op == 17:  # sc: the vector, in the mode EPCR[ICM] selects
        vector_mode = MSR_CM if cpu.epcr & EPCR_ICM else 0
        return sorted({(cpu.ivpr | cpu.ivor_syscall) & cpu.mask(vector_mode) & ~3, nxt})
    return [nxt]  # tw/twi included: over the guest's program handler
