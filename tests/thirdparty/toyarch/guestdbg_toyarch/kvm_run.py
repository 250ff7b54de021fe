"""KVM_RUN of the toy KVM: runs the toy CPU until the kernel model must leave to userspace.

The toy kernel's guest-debug rules, modelled on what real KVM arches do:

* A hardware breakpoint fires *before* its instruction executes (BookE IAC, x86 execute
  breakpoints): exit ``exception`` = debug, ``status`` = BPn, ``pc`` = ``addr`` = the address.
* A watchpoint fires *after* the access (a trap, like x86 data breakpoints): ``pc`` is the next
  instruction, ``addr`` the watched word, ``status`` WP (+ WP_WRITE for a store).
* With SINGLESTEP each KVM_RUN executes one instruction and leaves with status STEP at the new
  PC (an exception the instruction raised is entered first: the step ends at the handler).
* ``trap`` leaves with ``exception`` = trap, ``status`` = its immediate (the syndrome, as arm64's
  ESR carries a BRK's immediate) and the PC still at it, only with USE_SW_BP; without it the
  guest takes its trap exception (``epc`` = past the ``trap``).
* The guest's own single step (sr.SS) leaves as a STEP exit while userspace debugs the guest
  at all (ENABLE: the kernel cannot tell whose step it is, as x86 #DB); otherwise the guest
  takes its debug exception (``epc`` = the next instruction).
* ``halt`` is KVM_EXIT_HLT. A kick makes the running (or next) KVM_RUN return KVM_EXIT_INTR
  between two instructions.
* An exception queued by ``KVM_REG_TOY_QUEUE_PRIO`` is delivered at the next entry: a trap
  returns past the ``trap`` (it is a soft exception), the others to the PC.
"""

from __future__ import annotations

from dataclasses import dataclass

from guestdbg.kvm import constants as C
from guestdbg.kvm.uapi import AbiLayout

from . import abi
from .cpu import HALTED, NONE, SR_SS, ToyCpu
from .isa import INSN_SIZE
from .numbering import BUS, DEBUG, TRAP

_RUN = "struct kvm_run"
_EXIT = (_RUN, "debug", "arch")


@dataclass(frozen=True, slots=True)
class GuestDebug:
    """``vcpu->guest_debug`` and the compare registers, as KVM_SET_GUEST_DEBUG left them."""

    control: int = 0
    breakpoints: frozenset[int] = frozenset()
    bp_slot: tuple[tuple[int, int], ...] = ()
    """(address, status bit) per enabled breakpoint slot."""
    wp_addr: int = -1
    wp_type: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.control & C.KVM_GUESTDBG_ENABLE)

    @property
    def step(self) -> bool:
        return bool(self.control & C.KVM_GUESTDBG_SINGLESTEP)

    @property
    def sw_bp(self) -> bool:
        return bool(self.control & abi.KVM_GUESTDBG_USE_SW_BP)


class RunLoop:
    def __init__(self, cpu: ToyCpu, layout: AbiLayout) -> None:
        self.cpu = cpu
        self.debug = GuestDebug()
        self.queued: int | None = None
        """Vector queued for delivery at the next entry."""
        self.kicked = False
        self.area = bytearray(layout.sizeof(_RUN))
        self.view = memoryview(self.area)
        self._reason = layout.field(_RUN, "exit_reason")
        self._exception = layout.field(*_EXIT, "exception")
        self._status = layout.field(*_EXIT, "status")
        self._pc = layout.field(*_EXIT, "pc")
        self._addr = layout.field(*_EXIT, "addr")

    def run(self) -> int:
        cpu = self.cpu
        if self.kicked:
            self.kicked = False
            return self._exit(C.KVM_EXIT_INTR)
        if self.queued is not None:
            vector, self.queued = self.queued, None
            cpu.enter(vector, cpu.pc + INSN_SIZE if vector == TRAP else cpu.pc)
        dbg = self.debug
        while True:
            if self.kicked:
                self.kicked = False
                return self._exit(C.KVM_EXIT_INTR)
            pc = cpu.pc
            if pc in dbg.breakpoints:
                bit = next(b for a, b in dbg.bp_slot if a == pc)
                return self._debug_exit(DEBUG, bit, pc, pc)
            word = cpu.fetch(pc)
            guest_step = cpu.sr & SR_SS
            result = BUS if word is None else cpu.execute(word)
            if result == TRAP and dbg.sw_bp and word is not None:
                return self._debug_exit(TRAP, word & 0xFFFF, pc, pc)
            if result == HALTED:
                return self._exit(C.KVM_EXIT_HLT)
            if result != NONE:
                cpu.enter(result, pc + INSN_SIZE if result == TRAP else pc)
            status = self._watch_hit() | (abi.TOY_DBG_STEP if dbg.step else 0)
            if status:
                addr = dbg.wp_addr if status & abi.TOY_DBG_WP else cpu.pc
                return self._debug_exit(DEBUG, status, cpu.pc, addr)
            if guest_step and result == NONE:
                if dbg.enabled:
                    return self._debug_exit(DEBUG, abi.TOY_DBG_STEP, cpu.pc, cpu.pc)
                cpu.enter(DEBUG, cpu.pc)

    def _watch_hit(self) -> int:
        cpu, dbg = self.cpu, self.debug
        if cpu.access < 0 or cpu.access != dbg.wp_addr:
            return 0
        if cpu.access_write:
            return abi.TOY_DBG_WP | abi.TOY_DBG_WP_WRITE if dbg.wp_type & abi.TOY_WP_WRITE else 0
        return abi.TOY_DBG_WP if dbg.wp_type & abi.TOY_WP_READ else 0

    def _exit(self, reason: int) -> int:
        self._reason.put(self.area, reason)
        return reason

    def _debug_exit(self, exception: int, status: int, pc: int, addr: int) -> int:
        area = self.area
        self._exception.put(area, exception)
        self._status.put(area, status)
        self._pc.put(area, pc)
        self._addr.put(area, addr)
        return self._exit(C.KVM_EXIT_DEBUG)
