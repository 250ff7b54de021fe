"""One vCPU's instruction engine: Unicorn's e500 core, and nothing of BookE's debug facility.

Unicorn (``UC_ARCH_PPC``, 32-bit big-endian, CPU model e500mc or e500v2, virtual-TLB mode so
effective = physical address) executes the guest's instructions. Everything the kernel and the
debug facility do is modelled above this class; what it offers is a handful of measured
techniques (``docs/reference/unicorn.md``; the Unicorn techniques every emulated host shares,
count-limited slices above all, are in :mod:`guestdbg.emuhost.unicorn`):

* **Problem state always.** The guest runs with the engine's MSR[PR] = 1, the way KVM BookE-PR
  runs guests on a real e500v2. Every privileged instruction (mtspr/mfspr of a privileged SPR,
  mfmsr, rfi, tlbwe...) then raises a program interrupt (intno 6) before it executes, and the
  model emulates it. That is how a guest's access to DBCR0 or IAC1 never reaches the engine's own
  SPR: no code scan, no per-instruction hook, and nothing the guest generates at run time can slip
  past it. The engine's DBCR0 and MSR[DE] stay 0 (its own instruction-complete support reports a
  wrong PC), and MSR[GS] is never set (Unicorn aborts on some instructions with GS=1).
* **Instruction breakpoints** are Unicorn *exits* (``UC_CTL_UC_EXITS``): the translator ends the
  run before an instruction at an exit address, so they cost nothing at run time. (Address-
  limited code hooks were measured too: once Unicorn's instruction counter is installed, every
  instruction walks the code-hook list, so even idle IAC hooks slow the whole guest down
  (``bench/``); exits cost nothing measurable.) Blocks holding an added or removed exit are
  retranslated (``ctl_remove_cache``). A run that starts on an exit stops at once, which is the
  hardware's behaviour for an IAC; to execute the instruction the model passes the exit for one
  step.
* **Data breakpoints** are page protection: a watched page loses read and/or write permission,
  the access faults before anything is done (the instruction is suppressed, PC on it), and the
  model compares the exact address. A fault that is not a match is stepped over with the page
  briefly unprotected. Unicorn checks read permission on its TLB's slow path only, and taking
  read permission away does not empty the TLB: a load made while the page was readable, or
  refused by the protection, leaves an entry through which later loads skip the check. So the
  TLB is flushed before the next run whenever that may have happened
  (``docs/reference/unicorn.md`` §3).
* **TLB fills** go through a hook (:class:`~guestdbg.emuhost.unicorn.IdentityTlbFill`): a page
  that is not read-protected gets every permission in one entry, so a load and a store to one
  page do not refill its entry in turn; those refills made QEMU's TLB sizing grow each table to
  tens of MiB and clear all of it at every flush (``docs/reference/unicorn.md`` §12).
* **Steps** are ``emu_start(count=1)``, free runs count-limited slices of
  :data:`~guestdbg.emuhost.unicorn.SLICE` instructions, and the engine's private stubs count too:
  every run passes a count, so Unicorn's instruction counter is in every block from the start
  (a block translated without it runs on uncounted: a step after an uncounted run never
  returns), and a kick is seen between two slices, on an instruction boundary. A step also sets
  an exit at the next address for its run, so the block it translates is that one instruction,
  not everything up to the next branch (``docs/reference/unicorn.md`` §4).
* **MMIO**: addresses outside RAM are unmapped; an access faults before it is done and the model
  completes it after the VMM has served the exit.

Unicorn delivers no interrupt itself: on one it calls the interrupt hook with PC already past the
instruction (PC-4 is the faulting one, except after ``sc``, whose PC is the return address), and
the hook stops the run. The model reads the word and decides.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from unicorn import ppc_const as ppc

from guestdbg.emuhost import unicorn as ucc
from guestdbg.emuhost.memory import GuestMemory
from guestdbg.emuhost.unicorn import SLICE, EngineError, RegisterBank, UcError

from . import cpu_table, isa, xer_flags
from .board import PAGE_SIZE, STUB_BASE, WIDTH

CPU_MODELS = {
    "e500mc": ppc.UC_CPU_PPC32_E500MC,
    "e500v2": ppc.UC_CPU_PPC32_E500V2_V22,
    "e5500": ppc.UC_CPU_PPC64_E5500,
    "e6500": ppc.UC_CPU_PPC64_E6500,
}
GPR_IDS = [ppc.UC_PPC_REG_0 + n for n in range(32)]
FPR_IDS = [ppc.UC_PPC_REG_FPR0 + n for n in range(32)]
REG_PC = ppc.UC_PPC_REG_PC
REG_MSR = ppc.UC_PPC_REG_MSR
REG_CR = ppc.UC_PPC_REG_CR
REG_LR = ppc.UC_PPC_REG_LR
REG_CTR = ppc.UC_PPC_REG_CTR
REG_FPSCR = ppc.UC_PPC_REG_FPSCR
CORE_IDS = [*GPR_IDS, REG_CR, REG_CTR, REG_LR]
"""GPR0-31, CR, CTR, LR: what KVM_GET_REGS needs from the engine besides XER, in one call.
XER never goes through Unicorn's register API (see ``Engine.xer``)."""


_END = 0xFFFFFFFF
"""``until`` of every run: no instruction lives there (PCs are word-aligned)."""
_XER_STUB = STUB_BASE + 0x100
_XER_WORDS = (isa.mfspr(3, 1), isa.mtspr(1, 3))
"""``mfxer r3`` and ``mtxer r3`` at ``_XER_STUB`` and ``_XER_STUB + 4``, written once."""
_VEC_STUB = STUB_BASE + 0x200
_VEC_DATA = STUB_BASE + 0x800
"""Where the AltiVec stubs run and the 16-byte slot ``stvx``/``lvx`` go through."""
_MSR_VEC = 1 << 25
"""MSR[SPV], AltiVec available on e6500 (the bit e500v2 calls MSR[SPE])."""

PROT_ALL = ucc.UC_PROT_ALL
PROT_READ = ucc.UC_PROT_READ
PROT_WRITE = ucc.UC_PROT_WRITE
PROT_EXEC = ucc.UC_PROT_EXEC


class StopKind(enum.Enum):
    NONE = "none"
    """Stopped on request (a kick, a pending cache invalidation); nothing happened."""
    STEP = "step"
    """A count=1 run executed its instruction and nothing else stopped it."""
    INTERRUPT = "interrupt"
    """Unicorn raised an interrupt (``intno``); PC is past the instruction."""
    CODE_BREAK = "code_break"
    """The run reached an armed instruction address (``addr``) and did not execute it."""
    PROT = "prot"
    """A data access hit a protected page; the instruction did not execute."""
    MMIO = "mmio"
    """A data access outside RAM; the instruction did not execute."""
    FETCH_FAULT = "fetch_fault"
    """An instruction fetch outside RAM."""


@dataclass(slots=True)
class Stop:
    kind: StopKind
    pc: int = 0
    intno: int = 0
    addr: int = 0
    size: int = 0
    value: int = 0
    is_write: bool = False
    more: list[tuple[int, bool]] = field(default_factory=list)
    """PROT: the (address, is_write) of the instruction's further refused accesses (the words
    of a ``stmw`` after its first)."""


class Engine:
    def __init__(self, core: str, ram: GuestMemory) -> None:
        if core not in CPU_MODELS:
            raise EngineError(f"no Unicorn CPU model for core {core!r}")
        self.width = WIDTH[core]  # 64-bit cores run on Unicorn's ppc64 build
        self.mask = (1 << self.width) - 1
        """Register width mask: GPRs, CTR, LR and PCs are 64-bit on e5500/e6500."""
        mode = ucc.UC_MODE_PPC32
        if self.width == 64:
            cpu_table.ensure_ppc64_models()  # Unicorn 2.1.4 selects a 401 otherwise
            mode = ucc.UC_MODE_PPC64
        uc = ucc.new_uc(ucc.UC_ARCH_PPC, mode | ucc.UC_MODE_BIG_ENDIAN)
        uc.ctl_set_cpu_model(CPU_MODELS[core])
        uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
        self._prot: dict[int, int] = {}
        ucc.IdentityTlbFill(uc, self._tlb_perms)
        self._mapper = ucc.SlotMapper(uc, ram)
        uc.mem_map(STUB_BASE, PAGE_SIZE, PROT_ALL)
        uc.ctl_exits_enabled(True)
        self._set_exits = ucc.ExitSetter(uc)
        self._set_exits(frozenset())
        self.uc: Any = uc
        self._gpr_batch = RegisterBank(uc, GPR_IDS)
        self._core_batch = RegisterBank(uc, CORE_IDS)
        self._fpr_batch = RegisterBank(uc, FPR_IDS)
        self._r3_pc = RegisterBank(uc, [GPR_IDS[3], REG_PC])
        """r3 and PC, saved and restored around every private stub in one call each."""
        self._pc_bank = RegisterBank(uc, [REG_PC])
        self._drop = ucc.TranslationDropper(uc)
        self.ram = ram
        self._stop: Stop | None = None
        self._msr: int | None = None
        self._exits: frozenset[int] = frozenset()
        """The armed instruction addresses (Unicorn may hold one more: a step's own exit,
        replaced at the next run, see ``run``)."""
        self._tlb_stale = False
        """A read-protected page may have a TLB entry that lets loads through: flush before
        the next run (``_on_prot``, ``set_protection``, ``run``)."""
        self._remaps = 0
        """How many times the engine's mappings changed (``memory_generation``)."""
        self._xer: int | None = None
        uc.mem_write(_XER_STUB, b"".join(w.to_bytes(4, "big") for w in _XER_WORDS))
        self._intr = ucc.InterruptHook(uc, self._on_interrupt)
        uc.hook_add(
            ucc.UC_HOOK_MEM_READ_UNMAPPED
            | ucc.UC_HOOK_MEM_WRITE_UNMAPPED
            | ucc.UC_HOOK_MEM_FETCH_UNMAPPED,
            self._on_unmapped,
        )
        uc.hook_add(ucc.UC_HOOK_MEM_READ_PROT | ucc.UC_HOOK_MEM_WRITE_PROT, self._on_prot)
        self._xer_read = xer_flags.reader(uc, self._gpr_batch, self.width, self._mtxer, self._mfxer)
        """XER read where Unicorn keeps it, where that was checked to agree with ``mfxer``
        (else None: the stub)."""

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        pc: int,
        msr: int,
        step: bool,
        unprotect: int | None = None,
        pass_exit: int | None = None,
    ) -> Stop:
        """Run from ``pc`` with the engine MSR ``msr`` until something stops it (one
        instruction when ``step``). For this run only, ``unprotect`` lifts a page's protection
        (stepping over an access that hit a watched page but no watched address) and
        ``pass_exit`` disarms one instruction address (stepping over an IAC that did not fire)."""
        uc: Any = self.uc
        self.sync_memory()
        if msr != self._msr:
            uc.reg_write(REG_MSR, msr)
            self._msr = msr
        if unprotect is not None:
            uc.mem_protect(unprotect, PAGE_SIZE, PROT_ALL)
        if self._tlb_stale:
            self._tlb_stale = False
            self._drop.flush_tlb()
        exits = self._exits
        passing = pass_exit if pass_exit is not None and pass_exit in exits else None
        if passing is not None:
            exits = exits - {passing}
            self._drop(passing, passing + 4)  # its block is retranslated without the exit
        if step:
            # The block a step translates ends at the next instruction (docs/reference/
            # unicorn.md §4): without this exit it runs to the next branch, translated anew
            # for every step through straight-line code. The exit stays in Unicorn after the
            # run: the next run sets the exits it needs, and a call only when they differ.
            exits = exits | {(pc + 4) & self.mask}
        self._set_exits(exits)
        self._stop = None
        self._xer = None  # the guest may change SO/OV/CA
        try:
            uc.emu_start(pc, _END, count=1 if step else SLICE)
        except UcError as e:
            if self._stop is None:
                raise EngineError(f"Unicorn stopped at {pc:#x} without a reason: {e}") from e
        finally:
            if unprotect is not None:
                prot = self._prot.get(unprotect, PROT_ALL)
                uc.mem_protect(unprotect, PAGE_SIZE, prot)
                self._tlb_stale |= not prot & PROT_READ  # the step may have loaded from it
            if passing is not None:
                self._set_exits(self._exits)
                self._drop(passing, passing + 4)
        stop = self._stop
        if stop is not None and stop.kind in (StopKind.PROT, StopKind.MMIO):
            return stop  # its PC is the accessing instruction's (see ``_on_prot``)
        stop_pc = self._pc_bank.read()[0]
        if stop is None:
            if stop_pc in self._exits and (not step or stop_pc == pc):
                stop = Stop(StopKind.CODE_BREAK, addr=stop_pc)
            else:
                stop = Stop(StopKind.STEP if step else StopKind.NONE)
        stop.pc = stop_pc
        return stop

    def _tlb_perms(self, page: int, access_prot: int) -> int:
        """The permissions a TLB entry of ``page`` gets when an access needing
        ``access_prot`` fills it: all of them, except on a read-protected page, whose entry
        keeps Unicorn's own (only the access's), so that a fetch or a store there never leaves a
        read entry behind (``docs/reference/unicorn.md`` §3, §12)."""
        prot = self._prot.get(page)
        return PROT_ALL if prot is None or prot & PROT_READ else access_prot

    def _on_interrupt(self, intno: int) -> None:
        self._stop = Stop(StopKind.INTERRUPT, intno=intno)
        self._intr.stop()

    def _on_unmapped(
        self, uc: Any, access: int, address: int, size: int, value: int, _ud: object
    ) -> bool:
        """Like ``_on_prot``: the first access outside RAM is reported, with its instruction's
        PC (a ``stmw`` to MMIO calls this hook once per word and ends past the instruction)."""
        if self._stop is not None:
            return False
        if access == ucc.UC_MEM_FETCH_UNMAPPED:
            self._stop = Stop(StopKind.FETCH_FAULT, addr=address)
        else:
            is_write = access == ucc.UC_MEM_WRITE_UNMAPPED
            self._stop = Stop(StopKind.MMIO, pc=int(uc.reg_read(REG_PC)), addr=address,
                              size=size, value=value, is_write=is_write)  # fmt: skip
        return False

    def _on_prot(
        self, uc: Any, access: int, address: int, size: int, value: int, _ud: object
    ) -> bool:
        """The first refused access of the run is the one reported, with the PC read here (the
        accessing instruction). A single access stops the run at once with the PC on its
        instruction, but ``stmw`` is a helper looping over its words: each refused store
        calls this hook, none is performed, and the run ends with the PC already past the
        instruction (measured). Reporting the last word and that PC made the model step the
        *next* instruction over the open page and lose the ``stmw`` (random program seed 13).
        Re-executing the whole instruction is what the hardware does after an interrupt
        (e500 manual §5.9, partially executed instructions)."""
        is_write = access == ucc.UC_MEM_WRITE_PROT
        if not is_write:
            self._tlb_stale = True  # the refused load filled a TLB entry before the check
        if self._stop is None:
            self._stop = Stop(StopKind.PROT, pc=int(uc.reg_read(REG_PC)), addr=address,
                              size=size, value=value, is_write=is_write)  # fmt: skip
        elif self._stop.kind is StopKind.PROT:
            self._stop.more.append((address, is_write))
        return False

    # -- instruction and data breakpoints -----------------------------------------------------

    def set_code_breaks(self, addrs: Iterable[int]) -> None:
        """Exactly these instruction addresses stop a run before they execute."""
        want = frozenset(a & self.mask & ~3 for a in addrs)
        if want != self._exits:
            changed = want ^ self._exits
            self._exits = want
            self._set_exits(want)
            for a in changed:
                self._drop(a, a + 4)

    def sync_memory(self) -> None:
        """Catch up with the slot table (:class:`guestdbg.emuhost.unicorn.SlotMapper`): a
        remapped page lost its protection and its translations; a page no slot holds now has
        none to keep."""
        if not self._mapper.sync():
            return
        self._remaps += 1
        self.uc.ctl_flush_tb()
        for page, prot in list(self._prot.items()):
            if self.ram.contains(page, PAGE_SIZE):
                self.uc.mem_protect(page, PAGE_SIZE, prot)
                self._tlb_stale |= not prot & PROT_READ
            else:
                del self._prot[page]

    def memory_generation(self) -> int:
        """Caught up with the slot table (``sync_memory``), a number that changes whenever the
        engine's mappings did: the pages ``set_protection`` finds in RAM are the same while it
        stays."""
        self.sync_memory()
        return self._remaps

    def set_protection(self, pages: Mapping[int, int]) -> None:
        """Exactly these RAM pages (page-aligned address -> UC_PROT_*) differ from full access."""
        self.sync_memory()
        for page in list(self._prot):
            if page not in pages:
                del self._prot[page]
                if self.ram.contains(page, PAGE_SIZE):
                    self.uc.mem_protect(page, PAGE_SIZE, PROT_ALL)
        for page, prot in pages.items():
            if self.ram.contains(page, PAGE_SIZE) and self._prot.get(page) != prot:
                self._prot[page] = prot
                self.uc.mem_protect(page, PAGE_SIZE, prot)
                self._tlb_stale |= not prot & PROT_READ  # loads made while it was readable

    def invalidate(self, lo: int, hi: int) -> None:
        """Drop translated code of [lo, hi) (after the VMM patched instructions). Unlike the
        x86 host's, this drop needs no TLB flush: Unicorn's fetch walk fills the TLB entry of
        ``lo`` with execute permission only in virtual-TLB mode, so it can take a read entry
        away but never add one (``docs/reference/unicorn.md`` §3)."""
        self._drop(lo, hi)

    # -- registers ----------------------------------------------------------------------------

    def gprs(self) -> list[int]:
        return self._gpr_batch.read()

    def set_gprs(self, values: Iterable[int]) -> None:
        self._gpr_batch.write(v & self.mask for v in values)

    def core_regs(self) -> list[int]:
        """GPR0-31, CR, CTR, LR (one batch, ``CORE_IDS`` order), then XER."""
        values = self._core_batch.read()
        values.append(self.xer())
        return values

    def set_core_regs(self, values: Iterable[int]) -> None:
        """GPR0-31, CR, CTR, LR, XER in ``core_regs`` order, each already within the register
        width (KVM_SET_REGS truncates to the host's ``unsigned long``, which is that width:
        ``board.WIDTH``)."""
        core = list(values)
        xer = core.pop()
        core[32] &= 0xFFFFFFFF  # CR is 32 bits on every core
        self._core_batch.write(core)
        self.set_xer(xer)

    def xer(self) -> int:
        """XER as the guest's ``mfxer`` reads it. Unicorn (like QEMU) keeps SO, OV and CA in
        fields of their own: its register API returns XER without them and ignores them on
        write (measured: CA written through it, then ``addze`` adds nothing). So XER is
        written by ``mtxer`` run from the stub page and read where Unicorn keeps its parts
        (:mod:`.xer_flags`) or, where that could not be checked, by ``mfxer``; cached until the
        guest runs."""
        if self._xer is None:
            read = self._xer_read
            self._xer = read() if read is not None else self._mfxer()
        return self._xer

    def set_xer(self, value: int) -> None:
        value &= 0xFFFFFFFF
        if value != self._xer:
            self._mtxer(value)
            self._xer = value

    def _mfxer(self) -> int:
        return self._exec_stub(_XER_STUB, None, supervisor=False)

    def _mtxer(self, value: int) -> None:
        self._exec_stub(_XER_STUB + 4, value, supervisor=False)

    def gpr(self, n: int) -> int:
        return int(self.uc.reg_read(GPR_IDS[n]))

    def set_gpr(self, n: int, value: int) -> None:
        self.uc.reg_write(GPR_IDS[n], value & self.mask)

    def read(self, reg: int) -> int:
        return int(self.uc.reg_read(reg))

    def write(self, reg: int, value: int) -> None:
        self.uc.reg_write(reg, value)

    def fprs(self) -> list[int]:
        return self._fpr_batch.read()

    def set_fprs(self, values: Iterable[int]) -> None:
        self._fpr_batch.write(values)

    # -- SPRs the guest reaches without trapping ----------------------------------------------

    def spr_read(self, sprn: int) -> int:
        """Read an engine SPR by running ``mfspr r3, sprn`` from the stub page in supervisor
        state. Only for SPRs the guest can read in problem state (SPRG3-7 read aliases, USPRG0),
        which therefore must hold the guest's values in the engine itself."""
        return self._stub(isa.mfspr(3, sprn), None)

    def spr_write(self, sprn: int, value: int) -> None:
        self._stub(isa.mtspr(sprn, 3), value)

    def _stub(self, word: int, r3: int | None) -> int:
        self.uc.mem_write(STUB_BASE, word.to_bytes(4, "big"))
        self.uc.ctl_remove_cache(STUB_BASE, STUB_BASE + 4)
        return self._exec_stub(STUB_BASE, r3, supervisor=True)

    def _exec_stub(
        self, addr: int, r3: int | None, supervisor: bool, count: int = 1, msr: int = 0
    ) -> int:
        """Run the ``count`` instructions at ``addr`` on the stub page with r3 = ``r3`` (if
        given), with the engine MSR ``msr`` if ``supervisor``; return r3 after them. r3, PC and
        MSR are restored."""
        uc: Any = self.uc
        bank = self._r3_pc
        saved = bank.read()
        if r3 is not None:
            uc.reg_write(GPR_IDS[3], r3)
        if supervisor:
            uc.reg_write(REG_MSR, msr)
        self._stop = None
        try:
            uc.emu_start(addr, _END, count=count)
            if self._stop is not None:
                raise EngineError(f"stub at {addr:#x} raised {self._stop}")
            return bank.read()[0]
        finally:
            bank.write(saved)
            if supervisor and self._msr is not None:
                uc.reg_write(REG_MSR, self._msr)

    # -- AltiVec (e6500) ----------------------------------------------------------------------

    def _vec_stub(self, *words: int) -> None:
        """Run ``words`` in supervisor state with AltiVec on and r3 = the 16-byte data slot.
        Unicorn's register API has no vector registers, so they go through ``stvx``/``lvx``."""
        self.uc.mem_write(_VEC_STUB, b"".join(w.to_bytes(4, "big") for w in words))
        self.uc.ctl_remove_cache(_VEC_STUB, _VEC_STUB + 4 * len(words))
        self._exec_stub(_VEC_STUB, _VEC_DATA, True, count=len(words), msr=_MSR_VEC)

    def vr(self, n: int) -> int:
        """VRn as a 128-bit big-endian number (``stvx vn,0,r3``)."""
        self._vec_stub(isa.stvx(n, 0, 3))
        return int.from_bytes(self.uc.mem_read(_VEC_DATA, 16), "big")

    def set_vr(self, n: int, value: int) -> None:
        self.uc.mem_write(_VEC_DATA, (value & ((1 << 128) - 1)).to_bytes(16, "big"))
        self._vec_stub(isa.lvx(n, 0, 3))

    def vscr(self) -> int:
        """VSCR, the low word of ``mfvscr``'s vector (VR0 is saved and restored around it)."""
        v0 = self.vr(0)
        self._vec_stub(isa.mfvscr(0), isa.stvx(0, 0, 3))
        value = int.from_bytes(self.uc.mem_read(_VEC_DATA + 12, 4), "big")
        self.set_vr(0, v0)
        return value

    def set_vscr(self, value: int) -> None:
        v0 = self.vr(0)
        self.set_vr(0, value & 0xFFFFFFFF)
        self._vec_stub(isa.mtvscr(0))
        self.set_vr(0, v0)


class CpuView:
    """The guest registers as the kernel model uses them (``kvm_state.GuestCpu``): GPRs read and
    written in the engine, the PC held here between runs (the engine's PC is only meaningful
    while it runs)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pc = 0

    def gpr(self, n: int) -> int:
        return self.engine.gpr(n)

    def set_gpr(self, n: int, value: int) -> None:
        self.engine.set_gpr(n, value)
