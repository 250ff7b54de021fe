"""The effective DR0-3/DR7 of one vCPU as Unicorn hooks and page protection.

x86 hardware checks the debug registers on every instruction; the model must not (a global
code hook costs Unicorn two orders of magnitude, docs/reference/unicorn.md), so each armed
slot becomes the narrowest mechanism that reproduces the hardware's timing:

* execute (RW 00): a code hook on exactly that address, which fires before the instruction
  (a fault-class #DB, RIP at the breakpoint); RFLAGS.RF set suppresses one hit and is cleared,
  as the hardware's "resume flag" does;
* write (01) and read/write (11): the page is write- (or read-and-write-) protected; the
  protection fault arrives before the access with nothing done, the run loop then executes the
  instruction once with the page open and reports the #DB after it (a trap-class #DB, RIP after
  the access), after checking that the access really overlaps the slot's bytes;
* DR7.GD: while set, one code hook over all code looks for MOV to/from DRn (0F 21 / 0F 23) -
  the only case where every instruction must be looked at, and only while a debugger asks for
  general detect.

Unicorn arms x86 execute breakpoints itself when guest code writes DR7 with MOV (it is the
"hardware"), but not when DR7 is written from outside. Those native breakpoints are correct for
the guest's own DRs; while the host's DRs are in effect (USE_HW_BP) they must not fire, so the
model clears them by running ``mov %rax,%dr7`` with RAX = 0 in a private scratch page mapped
by private page tables (:meth:`DrArming.clear_native`), then puts the guest's DR7 value back
into the register file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from guestdbg.emuhost.memory import PAGE_SIZE as PAGE
from guestdbg.emuhost.memory import GuestMemory

from ..debugregs import (
    DR7_GD,
    DR_RW_EXECUTE,
    DR_RW_IO,
    DR_RW_WRITE,
    SLOTS,
    slot_enabled,
    slot_len,
    slot_rw,
)
from .paging import translate
from .uc import (
    UC_HOOK_CODE,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
    X,
)

SCRATCH = 0xFFE00000
"""A private 2 MiB-aligned physical (and, under the scratch page tables, linear) address above
any guest RAM the loader supports (at most 1 GiB): PML4, PDPT, PD, then the stub."""
_STUB = bytes.fromhex("0f23f8")  # mov %rax,%dr7
_MOV_DR = frozenset({0x21, 0x23})
_PREFIXES = frozenset({*range(0x40, 0x50), 0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x36})
RFLAGS_RF = 1 << 16


@dataclass(frozen=True, slots=True)
class Effective:
    """What the CPU would match against: x86.c ``kvm_update_dr7`` / ``eff_db``."""

    db: tuple[int, int, int, int]
    dr7: int
    host: bool
    """True when these are the host's (USE_HW_BP), False for the guest's own."""


@dataclass(frozen=True, slots=True)
class DataSlot:
    n: int
    addr: int
    length: int
    write_only: bool


class DrArming:
    def __init__(
        self,
        uc: Uc,
        ram: GuestMemory,
        on_exec: Callable[[int], None],
        on_general_detect: Callable[[int], None],
        base_prot: Callable[[int], int],
    ) -> None:
        self.uc = uc
        self.ram = ram
        self._base = base_prot
        """Guest-physical page -> the permissions its slot is mapped with (read-only slots
        lack write): what a page returns to when no watchpoint protects it."""
        self._on_exec = on_exec
        self._on_gd = on_general_detect
        self.applied: Effective | None = None
        self.exec_mask: dict[int, int] = {}
        """Breakpoint address -> B-bits of the execute slots on it."""
        self.data: list[DataSlot] = []
        self.protected: dict[int, int] = {}
        """Guest-physical page -> the Unicorn permissions it runs with."""
        self.skip_exec_at: int | None = None
        self.rf_start: int | None = None
        """RIP of the slice that started with RFLAGS.RF set (its first instruction)."""
        """Let one instruction at this address run past its execute breakpoint (step-over)."""
        self._hooks: list[int] = []
        self._scratch_ready = False

    # -- arming -----------------------------------------------------------------------------

    def apply(self, eff: Effective) -> None:
        if eff == self.applied:
            return
        self.disarm()
        uc = self.uc
        for n in range(SLOTS):
            if not slot_enabled(eff.dr7, n):
                continue
            rw = slot_rw(eff.dr7, n)
            addr = eff.db[n]
            if rw == DR_RW_EXECUTE:
                self.exec_mask[addr] = self.exec_mask.get(addr, 0) | 1 << n
            elif rw != DR_RW_IO:
                self.data.append(DataSlot(n, addr, slot_len(eff.dr7, n), rw == DR_RW_WRITE))
        for addr in self.exec_mask:
            self._hooks.append(uc.hook_add(UC_HOOK_CODE, self._exec_hook, None, addr, addr))
            uc.ctl_remove_cache(addr, addr + 1)
        cr0, cr3 = uc.reg_read(X.UC_X86_REG_CR0), uc.reg_read(X.UC_X86_REG_CR3)
        for slot in self.data:
            gpa = translate(self.ram, cr0, cr3, slot.addr)
            if gpa is None or not self.ram.contains(gpa):
                continue  # nothing there to access
            page = gpa & ~(PAGE - 1)
            removed = UC_PROT_WRITE if slot.write_only else UC_PROT_WRITE | UC_PROT_READ
            perms = self.protected.get(page, self._base(page)) & ~removed
            self.protected[page] = perms | UC_PROT_EXEC
        for page, perms in self.protected.items():
            uc.mem_protect(page, PAGE, perms)
        if eff.dr7 & DR7_GD:
            self._hooks.append(uc.hook_add(UC_HOOK_CODE, self._gd_hook, None, 1, 0))
            uc.ctl_flush_tb()
        self.applied = eff

    def disarm(self) -> None:
        uc = self.uc
        for h in self._hooks:
            uc.hook_del(h)
        for addr in self.exec_mask:
            uc.ctl_remove_cache(addr, addr + 1)
        for page in self.protected:
            if self.ram.contains(page, PAGE):
                uc.mem_protect(page, PAGE, self._base(page))
        self._hooks.clear()
        self.exec_mask.clear()
        self.data.clear()
        self.protected.clear()
        self.applied = None

    def remapped(self, regions: Sequence[tuple[int, int, int, int]] | None = None) -> None:
        """The engine's mappings were redone (the slot table changed, or only ``regions``,
        (gpa, size, ...) each, were mapped again): protect the watched pages again, and
        forget those no slot holds any more."""
        for page, perms in list(self.protected.items()):
            if regions is not None and not any(r[0] <= page < r[0] + r[1] for r in regions):
                continue
            if self.ram.contains(page, PAGE):
                self.uc.mem_protect(page, PAGE, perms)
            else:
                del self.protected[page]

    # -- matching ---------------------------------------------------------------------------

    def _exec_hook(self, uc: Uc, address: int, size: int, user_data: object) -> None:
        if self.skip_exec_at == address:
            self.skip_exec_at = None
            return
        rflags = uc.reg_read(X.UC_X86_REG_RFLAGS)
        if rflags & RFLAGS_RF:
            uc.reg_write(X.UC_X86_REG_RFLAGS, rflags & ~RFLAGS_RF)
            if self._first_after_rf(uc, address):
                return
        self._on_exec(address)

    def _first_after_rf(self, uc: Uc, address: int) -> bool:
        """RF suppresses the breakpoint of the first instruction after it was set, then the
        CPU clears it; QEMU clears it only at the end of that translation block, so a later
        instruction of the block still reads RF = 1. RF came either with the run (set at
        ``slice_start``, its first instruction) or from an IRETQ popping a fault's frame, whose
        return RIP and RFLAGS are then still just below RSP."""
        if address == self.rf_start:
            return True
        rsp = uc.reg_read(X.UC_X86_REG_RSP)
        try:
            frame_rip, _, frame_rflags = struct.unpack("<3Q", bytes(uc.mem_read(rsp - 40, 24)))
        except UcError:
            return False
        return frame_rip == address and bool(frame_rflags & RFLAGS_RF)

    def _gd_hook(self, uc: Uc, address: int, size: int, user_data: object) -> None:
        code = bytes(uc.mem_read(address, min(size, 15)))
        i = 0
        while i < len(code) and code[i] in _PREFIXES:
            i += 1
        if i + 1 < len(code) and code[i] == 0x0F and code[i + 1] in _MOV_DR:
            self._on_gd(address)

    def data_hit(self, addr: int, size: int, write: bool) -> int:
        """B-bits of the data slots an access of ``size`` bytes at linear ``addr`` matches."""
        mask = 0
        for s in self.data:
            if (write or not s.write_only) and addr < s.addr + s.length and s.addr < addr + size:
                mask |= 1 << s.n
        return mask

    def exec_hit(self, addr: int) -> int:
        return self.exec_mask.get(addr, 0)

    # -- Unicorn's own breakpoints ----------------------------------------------------------

    def clear_native(self) -> None:
        """Remove the execute breakpoints Unicorn armed when guest code wrote DR7; the guest's
        register values stay as they were."""
        uc = self.uc
        if not self._scratch_ready:
            uc.mem_map(SCRATCH, 4 * PAGE, UC_PROT_ALL)
            tables = struct.pack("<Q", (SCRATCH + PAGE) | 0x3)
            uc.mem_write(SCRATCH, tables)
            uc.mem_write(SCRATCH + PAGE, struct.pack("<Q", (SCRATCH + 2 * PAGE) | 0x3) * 4)
            uc.mem_write(SCRATCH + 2 * PAGE + 8 * 511, struct.pack("<Q", SCRATCH | 0x83))
            uc.mem_write(SCRATCH + 3 * PAGE, _STUB)
            self._scratch_ready = True
        saved = uc.context_save()
        cr3 = uc.reg_read(X.UC_X86_REG_CR3)
        try:
            uc.reg_write(X.UC_X86_REG_CR3, SCRATCH)
            uc.reg_write(X.UC_X86_REG_RAX, 0)
            stub = SCRATCH + 3 * PAGE
            uc.emu_start(
                stub, stub + len(_STUB), count=1
            )  # every run counts (guestdbg.emuhost.unicorn)
        finally:
            uc.context_restore(saved)
            uc.reg_write(X.UC_X86_REG_CR3, cr3)  # flush the scratch translation
