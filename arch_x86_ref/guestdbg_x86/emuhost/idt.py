"""Delivering an event through the guest's 64-bit IDT, as the CPU does on VM entry with an
injected event (SDM vol. 3 §6.14 "Exception and interrupt handling in 64-bit mode").

Unicorn reports interrupts but never delivers them (docs/reference/unicorn.md), so the
model does what the hardware would: read the 16-byte gate, pick the stack (IST, else RSP0 of the
TSS on a privilege change, else the current one), align it to 16 bytes, push SS, RSP, RFLAGS,
CS, RIP (and the error code), clear TF, NT, RF and VM (and IF for an interrupt gate), and jump to
the gate's target. A missing or malformed gate cannot be delivered; the caller turns that into
a shutdown, which is where the hardware's double and triple fault would end (no #GP/#NP/#DF
chain is modelled).
"""

from __future__ import annotations

import struct

from guestdbg.emuhost.memory import GuestMemory
from guestdbg.errors import BadAddress

from .cpu_state import CpuState
from .paging import translate
from .uc import RegisterBank, Uc, X

GATE_INTERRUPT = 0xE
GATE_TRAP = 0xF
GATE_PRESENT = 0x80
RFLAGS_TF = 1 << 8
RFLAGS_IF = 1 << 9
RFLAGS_NT = 1 << 14
RFLAGS_RF = 1 << 16
RFLAGS_VM = 1 << 17
TSS_RSP0 = 0x4
TSS_IST1 = 0x24
EXCEPTIONS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})
FAULTS = frozenset(range(32)) - {1, 2, 3, 4, 8, 18}
"""x86.c ``exception_type`` == EXCPT_FAULT: all but #DB, NMI, #BP, #OF (traps), #DF, #MC."""


class DeliveryFailed(Exception):
    """The event cannot reach the guest (no usable gate or stack)."""


class IdtDelivery:
    def __init__(self, uc: Uc, ram: GuestMemory, state: CpuState) -> None:
        self.uc = uc
        self.ram = ram
        self.state = state
        self._context = RegisterBank(
            uc,
            [X.UC_X86_REG_RIP, X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS, X.UC_X86_REG_CS,
             X.UC_X86_REG_SS, X.UC_X86_REG_CR0, X.UC_X86_REG_CR3],
        )  # fmt: skip
        self._cr0 = self._cr3 = 0

    def _phys(self, linear: int) -> int:
        """Gates, TSS fields and frame slots are read and written 8 bytes at a time at their
        natural alignment, so one translation per access is enough."""
        gpa = translate(self.ram, self._cr0, self._cr3, linear)
        if gpa is None:
            raise DeliveryFailed(f"{linear:#x} is not mapped")
        return gpa

    def _read(self, linear: int, size: int) -> bytes:
        try:
            return self.ram.read(self._phys(linear), size)
        except BadAddress as e:
            raise DeliveryFailed(str(e)) from e

    def deliver(
        self,
        vector: int,
        *,
        error_code: int | None = None,
        rip: int | None = None,
        fault: bool = False,
    ) -> None:
        """Raise DeliveryFailed when the guest cannot take ``vector``; ``rip`` is the return
        address to push (default: the current RIP). ``fault``: the pushed RFLAGS has RF set, as
        the CPU pushes it for a fault (SDM vol. 3 §18.3.1.1: so the instruction restarts past
        its own instruction breakpoint) and as x86.c ``kvm_check_and_inject_events`` sets it
        before injecting a pending fault-class exception (VM entry itself leaves RF as is)."""
        uc = self.uc
        rip_now, rsp, rflags, cs, ss, self._cr0, self._cr3 = self._context.read()
        _, idt_base, idt_limit, _ = uc.reg_read(X.UC_X86_REG_IDTR)
        if 16 * vector + 15 > idt_limit:
            raise DeliveryFailed(f"vector {vector} is past the IDT limit {idt_limit:#x}")
        lo, selector, ist, attr, mid, hi, _ = struct.unpack(
            "<HHBBHII", self._read(idt_base + 16 * vector, 16)
        )
        if not attr & GATE_PRESENT or attr & 0xF not in (GATE_INTERRUPT, GATE_TRAP):
            raise DeliveryFailed(f"IDT entry {vector} is not a present 64-bit gate")
        target = lo | mid << 16 | hi << 32
        return_rip = rip_now if rip is None else rip
        ist &= 0x7
        privilege_change = cs & 3 != 0
        new_rsp = rsp
        if ist or privilege_change:
            slot = TSS_IST1 + 8 * (ist - 1) if ist else TSS_RSP0
            new_rsp = int.from_bytes(self._read(self.state.tss_base() + slot, 8), "little")
        new_rsp &= ~0xF
        frame = [return_rip, cs, rflags | (RFLAGS_RF if fault else 0), rsp, ss]
        if error_code is not None:
            frame.insert(0, error_code)
        new_rsp -= 8 * len(frame)
        try:
            for i, value in enumerate(frame):
                gpa = self._phys(new_rsp + 8 * i)
                self.ram.write(gpa, struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF), notify=False)
        except BadAddress as e:
            raise DeliveryFailed(f"the interrupt stack at {new_rsp:#x} is not RAM") from e
        cleared = RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM
        if attr & 0xF == GATE_INTERRUPT:
            cleared |= RFLAGS_IF
        uc.reg_write(X.UC_X86_REG_CS, selector)
        if privilege_change:
            uc.reg_write(X.UC_X86_REG_SS, 0)
        uc.reg_write(X.UC_X86_REG_RSP, new_rsp)
        uc.reg_write(X.UC_X86_REG_RFLAGS, rflags & ~cleared)
        uc.reg_write(X.UC_X86_REG_RIP, target)
