"""KVM_RUN for one vCPU: enter the guest, and do with each way it stops what the kernel does.

``run`` is ``kvmppc_vcpu_run`` around a loop of guest entries; each engine stop is one of the
kernel's exits (``kvmppc_handle_exit``) and ends either in the guest again (RESUME_GUEST) or in
userspace with ``kvm_run`` filled (RESUME_HOST):

* debug interrupt (IAC, DAC, IC, BRT, TRAP and delayed events of ``facility``):
  ``kvmppc_restart_interrupt`` copies the hardware DBSR to ``vcpu->arch.dbsr`` and clears it,
  then ``kvmppc_handle_debug`` (``kvm_debug``);
* program interrupt (intno 6, and 96 for illegal/ehpriv words): a privileged instruction in guest
  supervisor state is emulated (``kvm_emulate``); the software-breakpoint word with
  KVM_GUESTDBG_USE_SW_BP exits (PC not advanced); everything else becomes a program interrupt
  for the guest with the hardware's ESR (PIL illegal, PPR privileged, PTR trap). BookE-PR
  emulates instead what its guest's supervisor code executes: ``tw`` gets ESR = guest ESR | PTR
  (``emulate.c``), and an unknown instruction is EMULATE_FAIL: ESR[PIL] queued and KVM_EXIT_UNKNOWN
  with ``hw.hardware_exit_reason = ~0 << 32 | inst``. On HV ``ehpriv`` traps to the hypervisor
  (HV_PRIV) in any guest mode: ``ehpriv 1`` exits for debug, other codes fail the same way;
* system call: ``sc`` goes to the guest; ``sc 1`` on HV (hcall) and ``sc`` with r0 = "KVM!" in
  supervisor on PR are KVM hypercalls, answered EV_UNIMPLEMENTED (no paravirt service modelled);
* FP/SPE unavailable and alignment are queued for the guest;
* an access outside RAM is MMIO: the exit carries it and the PC is already past the instruction
  (``kvmppc_emulate_loadstore``); a load's register is filled at the next KVM_RUN.

Single-step as the host sees it (DBCR0[IC] from KVM_GUESTDBG_SINGLESTEP) is the hardware's
instruction-complete event (e500 manual §8.4.5): one guest instruction completes and the run
exits with status 0 and address = the next PC. An instruction whose interrupt suppresses it
(``tw``/``twi`` that trap, an illegal or privileged word, FP unavailable, alignment...) completes
nothing: its interrupt is delivered (MSR[DE] survives a base-class interrupt) and the step ends
once the handler's first instruction has completed. ``sc`` completes and then raises its
interrupt, with the IC event pending too: the step ends on the system-call handler's first
instruction, not yet executed. Either way the exception is taken exactly once. Where each class
stops is written down in docs/stepping.md. The guest's own IC events follow the same rules.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from guestdbg.emuhost.memory import GuestMemory
from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_EXIT_INTR

from .. import abi, regs
from . import isa, kvm_debug, kvm_emulate, kvm_irq, kvm_msr
from .board import PAGE_SIZE
from .engine import REG_CR, REG_CTR, CpuView, Engine, Stop, StopKind
from .facility import DebugFacility
from .isa import Priv
from .kvm_emulate import Emul
from .kvm_state import (
    BOOKE_IRQPRIO_FP_UNAVAIL,
    BOOKE_IRQPRIO_ITLB_MISS,
    BOOKE_IRQPRIO_SPE_FP_DATA,
    BOOKE_IRQPRIO_SPE_FP_ROUND,
    BOOKE_IRQPRIO_SPE_UNAVAIL,
    BOOKE_IRQPRIO_SYSCALL,
    Kvm,
    MmioPending,
)
from .run_area import KvmRunArea

KVM_SC_MAGIC_R0 = 0x4B564D21
EV_UNIMPLEMENTED = 12
INTNO_PROGRAM = 6
INTNO_FP_UNAVAIL = 7
INTNO_SYSCALL = 8
INTNO_ALIGNMENT = 5
INTNO_HV_EMU = 96
INTNO_VPU = 73
_SPE_PRIO = {32: BOOKE_IRQPRIO_SPE_UNAVAIL, 33: BOOKE_IRQPRIO_SPE_FP_DATA,
             34: BOOKE_IRQPRIO_SPE_FP_ROUND,
             INTNO_VPU: BOOKE_IRQPRIO_SPE_UNAVAIL}  # fmt: skip
"""SPE on e500v2; AltiVec unavailable on e6500 (QEMU's POWERPC_EXCP_VPU), which booke.c queues
as BOOKE_IRQPRIO_ALTIVEC_UNAVAIL, the same priority as SPE_UNAVAIL (booke.h)."""


class Outcome(enum.Enum):
    """What one engine stop meant for the instruction at the PC."""

    EXIT = "exit"
    """Return to userspace; ``kvm_run`` is filled."""
    COMPLETED = "completed"
    """The instruction completed (natively or emulated)."""
    RAISED = "raised"
    """The instruction raised an interrupt that suppressed it (now pending for the guest)."""
    COMPLETED_RAISED = "completed_raised"
    """The instruction completed and then raised an interrupt (``sc``)."""
    NOTHING = "nothing"
    """No instruction was executed (a kick, a step-over to arrange, a delivered event)."""


class VcpuRunner:
    def __init__(
        self,
        kvm: Kvm,
        cpu: CpuView,
        engine: Engine,
        facility: DebugFacility,
        memory: GuestMemory,
        run_area: KvmRunArea,
    ) -> None:
        self.kvm, self.cpu, self.engine = kvm, cpu, engine
        self.facility, self.memory, self.run_area = facility, memory, run_area
        self._unprotect: int | None = None
        self._pass_exit: int | None = None

    # -- KVM_RUN --------------------------------------------------------------------------------

    def run(self, interrupted: Callable[[], bool], block: Callable[[], None]) -> int:
        """One KVM_RUN after ``immediate_exit`` was checked (and a pending MMIO load completed,
        :meth:`complete_mmio`). ``interrupted()`` is the pending-signal check, made before every
        guest entry; ``block()`` waits for a signal (a halted vCPU)."""
        k = self.kvm
        a = k.arch
        cpu = self.cpu
        fac = self.facility
        self.run_area.entering()
        fac.load()
        while True:
            if interrupted():
                self.run_area.exit_reason = KVM_EXIT_INTR
                return KVM_EXIT_INTR
            if a.pending:
                kvm_irq.check_exceptions(k)
            if not a.hv and a.msr & regs.MSR_WE:  # kvmppc_core_prepare_to_enter: vcpu blocks
                block()
                continue
            if fac.delayed_event():
                if self._debug_interrupt():
                    return KVM_EXIT_DEBUG
                continue
            ic = fac.ic_armed()
            if fac.bt_armed() and self._branch_taken():
                fac.dbsr |= regs.DBSR_BT | fac.iac_bits(cpu.pc)
                if self._debug_interrupt():
                    return KVM_EXIT_DEBUG
                continue
            step = ic or fac.bt_armed() or self._unprotect is not None
            step = step or self._pass_exit is not None
            msr = kvm_msr.engine_msr(a)
            stop = self.engine.run(cpu.pc, msr, step, self._unprotect, self._pass_exit)
            self._unprotect = self._pass_exit = None
            cpu.pc = stop.pc
            outcome = self._handle(stop)
            if outcome is Outcome.EXIT:
                return self.run_area.exit_reason
            if not ic or outcome in (Outcome.NOTHING, Outcome.RAISED):
                # e500 manual §8.4.5: no IC event for an instruction an interrupt suppressed;
                # the interrupt is delivered and the handler's first instruction completes next
                continue
            if outcome is Outcome.COMPLETED_RAISED:
                kvm_irq.check_exceptions(k)  # sc: the system call first, IC at its handler
            fac.dbsr |= regs.DBSR_IC
            if self._debug_interrupt():
                return KVM_EXIT_DEBUG

    def vcpu_put(self) -> None:
        """``kvmppc_booke_vcpu_put``: "Clear pending debug event in DBSR"."""
        self.facility.dbsr = 0

    # -- exits ----------------------------------------------------------------------------------

    def _handle(self, stop: Stop) -> Outcome:
        kind = stop.kind
        if kind is StopKind.STEP:
            return Outcome.COMPLETED
        if kind is StopKind.CODE_BREAK:
            return self._instruction_address(stop.addr)
        if kind is StopKind.INTERRUPT:
            return self._interrupt(stop)
        if kind is StopKind.PROT:
            return self._watched_page(stop)
        if kind is StopKind.MMIO:
            return self._mmio(stop)
        if kind is StopKind.FETCH_FAULT:
            kvm_irq.queue(self.kvm, BOOKE_IRQPRIO_ITLB_MISS)
            return Outcome.RAISED
        return Outcome.NOTHING

    def _debug_interrupt(self) -> bool:
        """BOOKE_INTERRUPT_DEBUG: True = RESUME_HOST."""
        k = self.kvm
        k.arch.dbsr = self.facility.dbsr  # kvmppc_restart_interrupt
        self.facility.dbsr = 0
        return kvm_debug.handle_debug(k)

    def _instruction_address(self, pc: int) -> Outcome:
        """The run reached an armed IAC address: a precise event with MSR[DE] = 1; else an
        imprecise one (DBSR[IACn] and DBSR[IDE], e500 manual §8.4.1) or no match at all, and
        the instruction executes (one step with the address passed)."""
        fac = self.facility
        bits = fac.iac_bits(pc)
        if bits and kvm_msr.hw_de(self.kvm.arch):
            fac.dbsr |= bits
            return Outcome.EXIT if self._debug_interrupt() else Outcome.NOTHING
        if bits:
            fac.dbsr |= bits | regs.DBSR_IDE
        self._pass_exit = pc
        return Outcome.NOTHING

    def _watched_page(self, stop: Stop) -> Outcome:
        fac = self.facility
        bits = fac.dac_bits(stop.addr, stop.is_write)
        for addr, is_write in stop.more:  # every word of a load/store multiple is an access
            bits |= fac.dac_bits(addr, is_write)
        if bits and kvm_msr.hw_de(self.kvm.arch):
            fac.dbsr |= bits
            return Outcome.EXIT if self._debug_interrupt() else Outcome.NOTHING
        if bits:
            fac.dbsr |= bits | regs.DBSR_IDE
        self._unprotect = stop.addr & ~(PAGE_SIZE - 1)  # step over it with the page open
        return Outcome.NOTHING

    def _word(self, addr: int) -> int:
        return self.memory.uint(addr, 4) if self.memory.contains(addr, 4) else 0

    def _interrupt(self, stop: Stop) -> Outcome:
        k = self.kvm
        intno = stop.intno
        if intno in (INTNO_PROGRAM, INTNO_HV_EMU):
            self.cpu.pc = (stop.pc - 4) & k.arch.ea_mask
            return self._program(self._word(self.cpu.pc))
        if intno == INTNO_SYSCALL:
            return self._syscall(self._word(stop.pc - 4))
        self.cpu.pc = (stop.pc - 4) & k.arch.ea_mask
        if intno == INTNO_FP_UNAVAIL:
            kvm_irq.queue(k, BOOKE_IRQPRIO_FP_UNAVAIL)
            return Outcome.RAISED
        if intno in _SPE_PRIO:
            kvm_irq.queue(k, _SPE_PRIO[intno])
            return Outcome.RAISED
        if intno == INTNO_ALIGNMENT:
            inst = self._word(self.cpu.pc)
            ls = isa.load_store(inst)
            ea = ls.ea(self.engine.gprs(), k.arch.ea_mask) if ls else 0
            kvm_irq.queue_alignment(k, ea, regs.ESR_ST if ls and ls.is_store else 0)
            return Outcome.RAISED
        self.run_area.internal_error()
        return Outcome.EXIT

    def _fault_esr(self, inst: int, user: bool) -> int:
        if isa.is_trap(inst, self.kvm.arch.is64):
            return regs.ESR_PTR
        if user and isa.privileged(inst) is not None:
            return regs.ESR_PPR
        return regs.ESR_PIL

    def _program(self, inst: int) -> Outcome:
        """BOOKE_INTERRUPT_PROGRAM (and HV_PRIV for ehpriv on HV); PC = the instruction."""
        k = self.kvm
        a = k.arch
        user = bool(a.msr & regs.MSR_PR)
        kind = isa.privileged(inst)
        if kind is not None and not user:
            return self._emulated(kvm_emulate.emulate_privileged(k, inst, kind), inst, kind)
        if isa.is_trap(inst, a.is64) and self.facility.tie_enabled():
            if kvm_msr.hw_de(a):
                self.facility.dbsr |= regs.DBSR_TIE
                return Outcome.EXIT if self._debug_interrupt() else Outcome.NOTHING
            self.facility.dbsr |= regs.DBSR_TIE | regs.DBSR_IDE
        dddd00 = a.sw_break_flavour == "dddd00"
        sw_bp = dddd00 and inst == kvm_emulate.KVMPPC_INST_SW_BREAKPOINT
        if sw_bp and a.guest_debug & abi.KVM_GUESTDBG_USE_SW_BP:
            # "SW breakpoints arrive as illegal instructions on HV"
            return Outcome.EXIT if kvm_debug.handle_debug(k) else Outcome.NOTHING
        if a.hv:
            if isa.is_ehpriv(inst):  # hypervisor privilege, from any guest mode
                return self._emulated(kvm_emulate.emulate_ehpriv(k, inst), inst, None)
            kvm_irq.queue_program(k, self._fault_esr(inst, user))
            return Outcome.RAISED
        if user:  # "Program traps generated by user-level software must be handled by the guest"
            kvm_irq.queue_program(k, self._fault_esr(inst, user))
            return Outcome.RAISED
        if isa.is_trap(inst, a.is64):
            kvm_irq.queue_program(k, a.esr | regs.ESR_PTR)
            return Outcome.RAISED
        if sw_bp:  # emulate.c: primary opcode 0, guest_debug not consulted
            return self._emulated(kvm_emulate.debug_exit(k), inst, None)
        if isa.is_ehpriv(inst):
            return self._emulated(kvm_emulate.emulate_ehpriv(k, inst), inst, None)
        return self._emulated(Emul.FAIL, inst, None)

    def _emulated(self, r: Emul, inst: int, kind: Priv | None) -> Outcome:
        k = self.kvm
        if r is Emul.DONE:
            self.cpu.pc = (self.cpu.pc + 4) & k.arch.ea_mask
            return Outcome.COMPLETED
        if r is Emul.JUMPED:
            return Outcome.COMPLETED
        if r is Emul.EXIT_USER:
            return Outcome.EXIT
        # EMULATE_FAIL
        k.arch.last_inst = inst
        kvm_irq.queue_program(k, regs.ESR_PIL)
        if k.arch.hv and kind is not None:
            return Outcome.RAISED  # on HV the hardware itself refused it: illegal instruction
        self.run_area.exit_unknown((0xFFFFFFFF << 32) | inst)  # emulation_exit
        return Outcome.EXIT

    def _syscall(self, inst: int) -> Outcome:
        """PC is already past ``sc`` (SRR0 of a system call is the next instruction)."""
        k = self.kvm
        a = k.arch
        user = bool(a.msr & regs.MSR_PR)
        lev = isa.sc_level(inst)
        if a.hv and lev == 1:  # BOOKE_INTERRUPT_HV_SYSCALL
            if user:
                kvm_irq.queue_program(k, regs.ESR_PPR)
                return Outcome.COMPLETED_RAISED
            return self._hypercall()
        if not a.hv and not user and self.cpu.gpr(0) == KVM_SC_MAGIC_R0:
            return self._hypercall()
        kvm_irq.queue(k, BOOKE_IRQPRIO_SYSCALL)
        return Outcome.COMPLETED_RAISED

    def _hypercall(self) -> Outcome:
        """``kvmppc_kvm_pv``: no service is modelled, every token is EV_UNIMPLEMENTED."""
        self.cpu.set_gpr(3, EV_UNIMPLEMENTED)
        self.cpu.set_gpr(4, 0)
        return Outcome.COMPLETED

    def _branch_taken(self) -> bool:
        inst = self._word(self.cpu.pc)
        cr, ctr = self.engine.read(REG_CR), self.engine.read(REG_CTR)
        return bool(isa.branch_taken(inst, cr, ctr, self.kvm.arch.ea_mask))

    # -- MMIO -----------------------------------------------------------------------------------

    def _mmio(self, stop: Stop) -> Outcome:
        k = self.kvm
        cpu = self.cpu
        inst = self._word(cpu.pc)
        ls = isa.load_store(inst)
        if ls is None:  # kvmppc_emulate_loadstore could not analyse it
            kvm_irq.queue_program(k, regs.ESR_PIL)
            return Outcome.RAISED
        gprs = self.engine.gprs()
        ea = ls.ea(gprs, k.arch.ea_mask)
        pending = MmioPending(ls.is_store, ls.rt, ls.ra, ea, ls.size, ls.update, ls.signed,
                              ls.byterev)  # fmt: skip
        if ls.is_store:
            value = gprs[ls.rt] & ((1 << (8 * ls.size)) - 1)
            data = value.to_bytes(ls.size, "little" if ls.byterev else "big")
        else:
            data = bytes(ls.size)
            k.arch.mmio = pending
        self.run_area.exit_mmio(stop.addr, data, ls.is_store)
        if ls.update:
            cpu.set_gpr(ls.ra, ea)
        cpu.pc = (cpu.pc + 4) & k.arch.ea_mask
        return Outcome.EXIT

    def complete_mmio(self) -> None:
        """``kvmppc_complete_mmio_load``: the loaded value, from ``kvm_run``, into the target."""
        m = self.kvm.arch.mmio
        self.kvm.arch.mmio = None
        if m is None or m.is_write:
            return
        data = self.run_area.mmio_data(m.size)
        value = int.from_bytes(data, "little" if m.byterev else "big")
        if m.signed and value & (1 << (8 * m.size - 1)):
            value -= 1 << (8 * m.size)
        self.cpu.set_gpr(m.rt, value & self.kvm.arch.ulong)
