"""KVM_RUN on the emulated host: run Unicorn until the model of the kernel must exit.

On entry (after :class:`guestdbg.emuhost.vcpu.EmulatedVcpu` checked ``immediate_exit``), as
``vcpu_enter_guest`` does: the effective debug registers are armed; a queued exception or
interrupt is delivered through the guest's IDT (a soft exception returns past the instruction
whose length the #BP/#DB exit saved, VMX ``vmx_inject_exception``; a #DB payload is folded into
DR6 and DR7.GD cleared first, x86.c ``kvm_deliver_exception_payload`` /
``kvm_inject_exception``).

Then the guest runs - one instruction at a time with SINGLESTEP, else in count-limited slices
between which a kick (the signal) ends the run with KVM_EXIT_INTR, on an instruction boundary
(:mod:`guestdbg.emuhost.unicorn`) - and each stop is judged the way ``vmx.c
handle_exception_nmi`` judges the exception behind it:

* #DB (a single step, an execute or data breakpoint, DR7.GD, the guest's own TF or icebp)
  leaves with KVM_EXIT_DEBUG only if ``guest_debug`` has SINGLESTEP or USE_HW_BP - exception 1,
  ``pc`` the linear RIP (at the instruction for execute breakpoints and general detect, after it
  for steps and data breakpoints), ``dr6`` the event bits ORed with DR6_ACTIVE_LOW, ``dr7`` the
  effective DR7; otherwise the kernel queues it to the guest itself with that payload;
* #BP (``int3``) leaves with exception 3 and RIP back at the int3 only with USE_SW_BP, and the
  instruction length is kept for a later re-injection; otherwise it goes to the guest;
* ``hlt`` is KVM_EXIT_HLT (there is no in-kernel APIC), also while stepping (``kvm_emulate_halt``
  overwrites the step's exit reason). Unicorn stops by itself after a ``hlt``; a slice that
  stopped without a hook's reason before its count ran out (Unicorn's own instruction counter,
  :class:`~guestdbg.emuhost.unicorn.InstructionCount`) ended on one;
* any other exception or ``int n`` goes to the guest; an invalid opcode is #UD; an access outside
  RAM is KVM_EXIT_INTERNAL_ERROR (there is no MMIO device model); an event the guest's IDT
  cannot take is KVM_EXIT_SHUTDOWN.

Port I/O is not modelled: Unicorn cannot stop right after an OUT from its instruction hook, so
``in``/``out`` go nowhere and guests signal with ``hlt``. There is no interrupt controller, so
BLOCKIRQ is accepted and has nothing to hold off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from guestdbg.emuhost.memory import PAGE_SIZE as PAGE
from guestdbg.emuhost.memory import GuestMemory
from guestdbg.emuhost.unicorn import SLICE, SlotMapper, TranslationDropper
from guestdbg.kvm import constants as C

from ..debugregs import (
    DR6_ACTIVE_LOW,
    DR6_BD,
    DR6_BS,
    DR7_GD,
    DR_RW_EXECUTE,
    SLOTS,
    apply_payload,
    slot_enabled,
    slot_rw,
)
from .cpu_state import CpuState
from .dr_arming import RFLAGS_RF, DrArming, Effective
from .events import SOFT_EXCEPTIONS, EventState, QueuedException
from .exit_probe import DOUBLE_FAULT, ExitProbe
from .exits import ExitWriter
from .guest_debug import GuestDebugModel
from .idt import EXCEPTIONS_WITH_ERROR_CODE, FAULTS, DeliveryFailed, IdtDelivery
from .mmio import MmioStores
from .paging import fetched_in_place, translate
from .uc import (
    UC_ERR_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_READ_PROT,
    UC_HOOK_MEM_WRITE_PROT,
    UC_MEM_WRITE_PROT,
    RegisterBank,
    Uc,
    UcError,
    X,
    errno_of,
    instruction_count,
)

END = 0xFFFFFFFFFFFFFFFF
"""``until`` for emu_start: not canonical, so never reached."""
DROP_PAGES_MAX = 16
"""Pages of VMM writes whose translations are dropped one by one before a run; more, and the
whole cache goes (loading an image, restoring a snapshot)."""
DB_VECTOR, BP_VECTOR, UD_VECTOR, PF_VECTOR = 1, 3, 6, 14
HLT, INT3, INT_N, ICEBP = 0xF4, 0xCC, 0xCD, 0xF1
DR_IDS = (
    X.UC_X86_REG_DR0, X.UC_X86_REG_DR1, X.UC_X86_REG_DR2, X.UC_X86_REG_DR3,
    X.UC_X86_REG_DR6, X.UC_X86_REG_DR7,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a Unicorn slice ended early, recorded by a hook."""

    kind: str
    address: int = 0
    size: int = 0
    write: bool = False
    intno: int = 0
    cr2: int = 0
    """CR2 as the #PF set it (read in the hook: the exit probe overwrites it, .exit_probe)."""


class RunLoop:
    def __init__(
        self,
        uc: Uc,
        ram: GuestMemory,
        mapper: SlotMapper,
        state: CpuState,
        events: EventState,
        debug: GuestDebugModel,
        exits: ExitWriter,
        signal_pending: Callable[[], bool],
    ) -> None:
        self.uc = uc
        self.ram = ram
        self.state = state
        self.events = events
        self.debug = debug
        self.exits = exits
        self.idt = IdtDelivery(uc, ram, state)
        self.mapper = mapper
        self.arming = DrArming(uc, ram, self._exec_stop, self._gd_stop, mapper.base_prot)
        self._mmio = MmioStores(uc, ram, mapper, exits)
        self._signal_pending = signal_pending
        """True when a kick arrived (polled between two slices)."""
        self._stop: Stop | None = None
        self._stale_code = False
        self._stale_pages: set[int] | None = set()
        """Guest-physical pages the VMM wrote since the last run (None: too many to count)."""
        self._drop = TranslationDropper(uc)
        self._walk_bank = RegisterBank(
            uc, [X.UC_X86_REG_CR0, X.UC_X86_REG_CR3, X.UC_X86_REG_CR4, X.UC_X86_REG_CS]
        )
        self._native_cleared_for: int | None = None
        self._dr_bank = RegisterBank(uc, DR_IDS)
        self._dr6_bank = RegisterBank(uc, [X.UC_X86_REG_DR6])
        self._cr2_bank = RegisterBank(uc, [X.UC_X86_REG_CR2])
        self._rflags_bank = RegisterBank(uc, [X.UC_X86_REG_RFLAGS])
        self._probe = ExitProbe(uc)
        self._count = instruction_count(uc)
        uc.hook_add(UC_HOOK_INTR, self._intr_hook)
        uc.hook_add(UC_HOOK_MEM_WRITE_PROT | UC_HOOK_MEM_READ_PROT, self._prot_hook)

    # -- guest debug registers (the guest's own, kept in Unicorn's register file) ----------

    def guest_dregs(self) -> list[int]:
        """DR0, DR1, DR2, DR3, DR6, DR7 as the guest wrote them."""
        return self._dr_bank.read()

    def set_guest_dregs(self, values: list[int]) -> None:
        self._dr_bank.write(values)
        self._native_cleared_for = None  # the guest's DR7 changed under any native arming

    def effective(self) -> Effective:
        d = self.guest_dregs()
        return self.debug.effective((d[0], d[1], d[2], d[3]), d[5])

    # -- hooks (run on the vCPU thread, inside emu_start) -----------------------------------

    def _exec_stop(self, address: int) -> None:
        self._stop = Stop("exec", address)
        self.uc.emu_stop()

    def _gd_stop(self, address: int) -> None:
        self._stop = Stop("gd", address)
        self.uc.emu_stop()

    def _intr_hook(self, uc: Uc, intno: int, user_data: object) -> None:
        cr2 = self._cr2_bank.read()[0] if intno == PF_VECTOR else 0
        self._stop = Stop("intr", intno=intno, cr2=cr2)
        uc.emu_stop()

    def _prot_hook(
        self, uc: Uc, access: int, address: int, size: int, value: int, user_data: object
    ) -> bool:
        self._stop = Stop("prot", address, size, access == UC_MEM_WRITE_PROT)
        return False

    def code_changed(self, lo: int, hi: int) -> None:
        """The VMM wrote guest-physical ``[lo, hi)``: its translations go before the next run
        (:meth:`_drop_stale_code`)."""
        pages = self._stale_pages
        if pages is not None:
            pages.update(range(lo & ~(PAGE - 1), min(hi, lo + (DROP_PAGES_MAX + 1) * PAGE), PAGE))
            if len(pages) > DROP_PAGES_MAX:
                self._stale_pages = None
        self._stale_code = True

    def _drop_stale_code(self) -> None:
        """Drop the translations of what the VMM wrote. Unicorn drops translations by linear
        address (it walks the guest's page tables as a fetch to find the guest-physical page),
        so the written pages are dropped one by one only where the guest fetches each at its
        own address and that walk changes nothing (:func:`.paging.fetched_in_place`, as under
        the boot tables' identity map); otherwise, or after a large write, every translation
        goes."""
        pages, self._stale_pages, self._stale_code = self._stale_pages, set(), False
        if pages is not None:
            cr0, cr3, cr4, cs = self._walk_bank.read()
            if all(fetched_in_place(self.ram, cr0, cr3, cr4, cs & 3, p) for p in pages):
                for page in pages:
                    self._drop(page, page + PAGE)
                if pages:
                    self._drop.flush_tlb()  # the drops' walks bypass watched pages' protection
                return
        self.uc.ctl_flush_tb()

    # -- KVM_RUN ----------------------------------------------------------------------------

    def run(self) -> int:
        if self.mapper.sync():
            self.uc.ctl_flush_tb()
            self.arming.remapped()
        if self._mmio.pending:  # x86.c complete_emulated_mmio: the next fragment exits
            return self._mmio.next_exit()
        try:
            self._deliver_queued()
            while True:
                if self._signal_pending():
                    return self.exits.exit(C.KVM_EXIT_INTR)
                reason = self._slice()
                if reason is not None:
                    return reason
        except DeliveryFailed:
            return self.exits.exit(C.KVM_EXIT_SHUTDOWN)

    def _arm(self) -> Effective:
        eff = self.effective()
        if eff.host:
            guest_dr7 = self.guest_dregs()[5]
            if guest_dr7 & 0xFF and self._native_cleared_for != guest_dr7:
                if self.state.cpl() == 0:
                    self.arming.clear_native()
                self._native_cleared_for = guest_dr7
        self.arming.apply(eff)
        return eff

    def _emu(self, step: bool, open_page: int | None = None) -> Exception | None:
        """One ``emu_start``: one instruction, or a slice of at most SLICE; every run passes a
        count, so Unicorn's instruction counter is in every translated block."""
        uc = self.uc
        if self._stale_code:
            self._drop_stale_code()
        rip = self.state.rip()
        self._stop = None
        if open_page is not None:
            uc.mem_protect(open_page, PAGE, self.mapper.base_prot(open_page))
        cr2 = self._cr2_bank.read()
        self.arming.rf_start = rip if self._rflags_bank.read()[0] & RFLAGS_RF else None
        try:
            uc.emu_start(rip, END, count=1 if step else SLICE)
        except UcError as e:
            return e
        finally:
            stop = self._stop
            fault = stop is not None and stop.kind == "intr" and stop.intno == PF_VECTOR
            self._cr2_bank.write([stop.cr2] if fault and stop is not None else cr2)
            if open_page is not None:
                uc.mem_protect(open_page, PAGE, self.arming.protected[open_page])
        return None

    def _slice(self) -> int | None:
        """One emu_start; an exit reason, or None to go on running."""
        eff = self._arm()
        step = self.debug.singlestep
        rip = self.state.rip()
        dr6_before = self._dr6_bank.read()[0]
        err = self._emu(step)
        stop = self._stop
        if stop is None and err is None:
            if not step and self._count.ran_out(SLICE):
                return None  # a whole slice ran: look for a kick, then go on
            return self._finished(step, rip, eff)
        if stop is None:
            assert err is not None
            return self._uc_error(err)
        if stop.kind == "intr":
            return self._interrupt(eff, stop.intno, dr6_before)
        pages = self._read_only_pages(stop)
        if pages:
            return self._store_as_mmio(eff, rip, pages)
        # The guest may have rewritten its own DR7 during the slice (its #DB handler disarming
        # a breakpoint): judge the stop against the registers as they are now.
        eff = self._arm()
        if stop.kind == "exec":
            mask = self.arming.exec_hit(stop.address)
            return self._debug_event(eff, stop.address, mask) if mask else None
        if stop.kind == "gd":
            return self._debug_event(eff, stop.address, DR6_BD) if eff.dr7 & DR7_GD else None
        return self._data_access(eff, stop, rip, step)

    def _finished(self, step: bool, rip: int, eff: Effective) -> int | None:
        now = self.state.rip()
        if step:
            if now == rip + 1 and self._byte(rip) == HLT:
                return self.exits.exit(C.KVM_EXIT_HLT)
            return self.exits.debug(DB_VECTOR, now, DR6_ACTIVE_LOW | DR6_BS, eff.dr7)
        if self._byte(now - 1) == HLT:
            return self.exits.exit(C.KVM_EXIT_HLT)
        return self.exits.internal_error()

    def _debug_event(self, eff: Effective, pc: int, bits: int) -> int | None:
        """A #DB at ``pc``: to userspace (vmx) or to the guest (``kvm_queue_exception_p``)."""
        if self.debug.db_exits:
            return self.exits.debug(DB_VECTOR, pc, DR6_ACTIVE_LOW | bits, eff.dr7)
        self.events.queue(DB_VECTOR, bits)
        self._deliver_queued()
        return None

    def _data_access(self, eff: Effective, stop: Stop, rip: int, step: bool) -> int | None:
        """The protection fault came before the access: run the instruction once with the
        page open (a trap, like the hardware's), then report what it matched."""
        mask = self.arming.data_hit(stop.address, stop.size, stop.write)
        gpa = translate(
            self.ram, self.uc.reg_read(X.UC_X86_REG_CR0), self.uc.reg_read(X.UC_X86_REG_CR3),
            stop.address,
        )  # fmt: skip
        if gpa is None:
            return self.exits.internal_error()
        page = gpa & ~(PAGE - 1)
        if page not in self.arming.protected:
            return None  # disarmed since the fault: the access simply runs
        self.arming.skip_exec_at = rip
        dr6_before = self._dr6_bank.read()[0]
        err = self._emu(True, open_page=page)
        self.arming.skip_exec_at = None
        follow = self._stop
        pages = self._read_only_pages(follow) if follow is not None else []
        if pages:
            return self._store_as_mmio(eff, rip, pages)
        if follow is not None:
            return self._interrupt(eff, follow.intno, dr6_before) if follow.kind == "intr" else None
        if err is not None:
            return self._uc_error(err)
        now = self.state.rip()
        if mask:
            bits = mask | (DR6_BS if step else 0)
            return self._debug_event(eff, now, bits)
        if step:
            return self.exits.debug(DB_VECTOR, now, DR6_ACTIVE_LOW | DR6_BS, eff.dr7)
        return None

    def _read_only_pages(self, stop: Stop) -> list[int]:
        """The read-only pages a refused store writes, none when the protection fault is not
        a store into a read-only slot (docs/reference/kvm-debug-abi.md §11.2). Unicorn reports
        the guest-physical address (docs/reference/unicorn.md §13); an access that crosses a
        page boundary is taken to go on at the next guest-physical page."""
        if stop.kind != "prot" or not stop.write:
            return []
        first = stop.address & ~(PAGE - 1)
        last = (stop.address + max(stop.size, 1) - 1) & ~(PAGE - 1)
        return self._mmio.read_only_pages([first] if first == last else [first, last])

    def _store_as_mmio(self, eff: Effective, rip: int, pages: list[int]) -> int | None:
        """Run the storing instruction once with the read-only pages it writes backed by a
        scratch copy (:class:`MmioStores`); its RAM part lands in RAM, its read-only part
        leaves KVM_RUN as KVM_EXIT_MMIO with RIP after the instruction, as x86.c
        ``emulator_read_write`` and ``x86_emulate_instruction`` do."""
        self.arming.skip_exec_at = rip
        dr6_before = self._dr6_bank.read()[0]
        regions = self._mmio.start(pages)
        try:
            err = self._emu(True)
            if err is None and self._stop is None and self.state.rip() == rip:
                # A store into its own translation block: the engine (QEMU's precise
                # self-modifying-code handling) abandons the block after the store and runs
                # the instruction again alone, which a count of one stops before; run it to
                # its end instead (the second count is that run of it, a third would be the
                # next instruction).
                try:
                    self.uc.emu_start(rip, END, count=2)
                except UcError as e:
                    err = e
        finally:
            writes = self._mmio.stop()
            # Unmapping a copy dropped the translations made of its bytes by a fetch walk of
            # the region's guest-physical address (docs/reference/unicorn.md §13): where that
            # walk does not lead to the region, drop them all.
            cr0, cr3, cr4, cs = self._walk_bank.read()
            if not all(fetched_in_place(self.ram, cr0, cr3, cr4, cs & 3, r[0]) for r in regions):
                self.uc.ctl_flush_tb()
        self.arming.skip_exec_at = None
        self.arming.remapped(regions)
        follow = self._stop
        if follow is not None and follow.kind == "intr":
            return self._interrupt(eff, follow.intno, dr6_before)
        if err is not None:
            return self._uc_error(err)
        if not self._mmio.collect(writes, regions):
            return None  # nothing reached a read-only page after all: the guest goes on
        return self._mmio.next_exit()

    def _interrupt(self, eff: Effective, intno: int, dr6_before: int) -> int | None:
        if intno == DOUBLE_FAULT:
            # never the guest's (.exit_probe): run the instruction again for its own fault
            self._probe.forget_chain()
            return None
        now = self.state.rip()
        if intno == BP_VECTOR:
            length = 1 if self._byte(now - 1) == INT3 else 2
            if self.debug.use_sw_bp:
                self.uc.reg_write(X.UC_X86_REG_RIP, now - length)
                self.events.event_exit_inst_len = length
                return self.exits.debug(BP_VECTOR, now - length, None, None)
            self.idt.deliver(BP_VECTOR, rip=now)
            return None
        if intno == DB_VECTOR:
            return self._native_debug(eff, now, dr6_before)
        if self._byte(now - 2) == INT_N and self._byte(now - 1) == intno:
            self.idt.deliver(intno, rip=now)  # int n: a software interrupt, RIP past it
            return None
        error = 0 if intno in EXCEPTIONS_WITH_ERROR_CODE else None
        # a fault: RIP at the instruction
        self.idt.deliver(intno, error_code=error, fault=intno in FAULTS)
        return None

    def _native_debug(self, eff: Effective, now: int, dr6_before: int) -> int | None:
        """A #DB Unicorn raised itself: the guest's TF, icebp, or an execute breakpoint it
        armed by writing DR7 during this run."""
        self.uc.reg_write(X.UC_X86_REG_DR6, dr6_before)  # a #DB exit does not update DR6
        guest = self.guest_dregs()
        native = sum(
            1 << n
            for n in range(SLOTS)
            if slot_enabled(guest[5], n)
            and slot_rw(guest[5], n) == DR_RW_EXECUTE
            and guest[n] == now
        )
        rflags = self.uc.reg_read(X.UC_X86_REG_RFLAGS)
        if native and not rflags & (1 << 8):
            if eff.host:  # the guest's DRs are not in effect: Unicorn should not have fired
                self.arming.clear_native()
                return None
            return self._debug_event(eff, now, native)
        bits = 0 if self._byte(now - 1) == ICEBP else DR6_BS
        return self._debug_event(eff, now, bits)

    def _uc_error(self, err: Exception) -> int | None:
        if errno_of(err) == UC_ERR_INSN_INVALID:
            self.idt.deliver(UD_VECTOR, fault=True)
            return None
        return self.exits.internal_error()

    # -- delivery ---------------------------------------------------------------------------

    def _deliver_queued(self) -> None:
        ev = self.events
        ex = ev.exception
        if ex is not None:
            ev.exception = None
            self.fold_payload(ex)
            rip = self.state.rip()
            if ex.vector in SOFT_EXCEPTIONS:
                rip += ev.event_exit_inst_len
            code = ex.error_code if ex.has_error_code else None
            fault = ex.pending and not ex.injected and ex.vector in FAULTS
            self.idt.deliver(ex.vector, error_code=code, rip=rip, fault=fault)
        elif ev.interrupt is not None:
            irq, ev.interrupt = ev.interrupt, None
            rip = self.state.rip() + (ev.event_exit_inst_len if irq.soft else 0)
            self.idt.deliver(irq.vector, rip=rip)

    def fold_payload(self, ex: QueuedException) -> None:
        """x86.c ``kvm_deliver_exception_payload`` (+ DR7.GD cleared on #DB delivery)."""
        if ex.vector == DB_VECTOR:
            d = self.guest_dregs()
            if ex.has_payload:
                d[4] = apply_payload(d[4], ex.payload)
            d[5] &= ~DR7_GD
            self.set_guest_dregs(d)
        elif ex.vector == PF_VECTOR and ex.has_payload:
            self.uc.reg_write(X.UC_X86_REG_CR2, ex.payload)
        ex.has_payload, ex.payload = False, 0

    # -- helpers ----------------------------------------------------------------------------

    def _byte(self, linear: int) -> int:
        try:
            return int(self.uc.mem_read(linear, 1)[0])
        except UcError:
            return -1
