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
    """The registers a successor computation may need (all 32-bit)."""

    pc: int
    lr: int
    ctr: int
    srr0: int
    csrr0: int
    mcsrr0: int
    ivpr: int
    ivor_syscall: int


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def successors(insn: int, cpu: CpuView) -> list[int]:
    pc = cpu.pc
    nxt = (pc + 4) & 0xFFFFFFFF
    op = insn >> 26
    if op == 18:  # b, ba, bl, bla
        li = _sext(insn & 0x03FFFFFC, 26)
        return [(li if insn & 2 else pc + li) & 0xFFFFFFFF]
    if op == 16:  # bc
        bd = _sext(insn & 0xFFFC, 16)
        target = (bd if insn & 2 else pc + bd) & 0xFFFFFFFF
        return sorted({target, nxt})
    if op == 19:
        xo = (insn >> 1) & 0x3FF
        if xo == 16:  # bclr
            return sorted({cpu.lr & 0xFFFFFFFC, nxt})
        if xo == 528:  # bcctr
            return sorted({cpu.ctr & 0xFFFFFFFC, nxt})
        if xo == 50:  # rfi
            return [cpu.srr0 & 0xFFFFFFFC]
        if xo == 51:  # rfci
            return [cpu.csrr0 & 0xFFFFFFFC]
        if xo == 38:  # rfmci
            return [cpu.mcsrr0 & 0xFFFFFFFC]
        if xo == 39:  # rfdi
            raise UnsupportedByArch(
                "cannot single-step rfdi with planted traps: KVM BookE does not expose DSRR0"
            )
        return [nxt]
    if op == 17:  # sc
        return sorted({(cpu.ivpr | cpu.ivor_syscall) & 0xFFFFFFFC, nxt})
    return [nxt]  # tw/twi included: over the guest's program handler
