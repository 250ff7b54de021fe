"""Unicorn as the CPU of an emulated KVM host: the typed names, fast register banks, and how a
vCPU thread runs it so that a kick lands between two instructions.

Unicorn's Python binding declares its classes but not its methods' types, so under strict mypy
every call would be an "untyped call": the CPU object is ``Any`` (:data:`Uc`) and the constants
are re-exported here as ints, once, for every arch's engine.

Measured techniques (``docs/reference/unicorn.md`` has the measurements; ``bench/`` the
timings):

* **Kicks land between count-limited slices, never through ``uc_emu_stop`` from another
  thread.** An asynchronous ``emu_stop`` can end the run with a store already done and the PC
  still on its instruction, so resuming runs that instruction twice: measured on store loops on
  PowerPC (``stw``) and x86-64 (``incq`` of a memory word), with and without the instruction
  counter. It can also be lost, when it lands before ``emu_start`` has reset its own stop flag.
  So a free run is a series of ``emu_start`` calls of at most :data:`SLICE` instructions;
  between two, the vCPU thread polls for a kick
  (:meth:`guestdbg.emuhost.vcpu.EmulatedVcpu._signal_pending`). A count-limited stop is made by
  Unicorn's instruction counter before the next instruction starts, so it is an instruction
  boundary, like a signal arriving between two instructions.
* **Every run passes a count.** Unicorn counts with a code hook it installs the first time a
  count is given, and it instruments only blocks translated after that: a block translated
  without it runs on uncounted, so a step after a free run never returns. A run *without* a
  count removes the counter again and flushes every translation. So every run, steps and free
  slices and private stubs alike, passes a count, and the counter is in every block from the
  start. It is Unicorn's C helper, not a Python hook; its cost is in ``bench/``.
* **How many instructions a slice executed** (:class:`InstructionCount`). A slice that ends
  without any hook reporting a reason ended either because its count ran out or because the
  CPU stopped by itself (x86 ``hlt``). Both leave the PC on an instruction boundary and the
  binding reports nothing else; the byte before the PC cannot tell either (``0xf4``, ``hlt``,
  also ends x86 instructions whose immediate or displacement ends in it). So the count is read
  from Unicorn's own counter, found once per process in a private engine by running known
  counts; a Unicorn whose counter cannot be found is refused when the engine is made.
* **Register banks** (:class:`RegisterBank`): the binding's ``reg_read`` picks a register class
  per call and ``reg_read_batch`` builds its arrays per call; KVM_GET_REGS sits on every stop,
  so a fixed list of registers goes through ``uc_reg_read_batch`` on preallocated arrays.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import unicorn as _unicorn

from ..errors import GuestDebugError
from .memory import GuestMemory, RamSlot

Uc: TypeAlias = Any
"""A ``unicorn.Uc``."""

UcError: type[Exception] = getattr(_unicorn, "UcError")  # noqa: B009
_UC_CLASS: Any = getattr(_unicorn, "Uc")  # noqa: B009


def _const(name: str) -> int:
    return int(getattr(_unicorn, name))


UC_ARCH_X86 = _const("UC_ARCH_X86")
UC_ARCH_PPC = _const("UC_ARCH_PPC")
UC_MODE_64 = _const("UC_MODE_64")
UC_MODE_PPC32 = _const("UC_MODE_PPC32")
UC_MODE_PPC64 = _const("UC_MODE_PPC64")
UC_MODE_BIG_ENDIAN = _const("UC_MODE_BIG_ENDIAN")
UC_TLB_VIRTUAL = _const("UC_TLB_VIRTUAL")
UC_HOOK_CODE = _const("UC_HOOK_CODE")
UC_HOOK_INTR = _const("UC_HOOK_INTR")
UC_HOOK_MEM_WRITE = _const("UC_HOOK_MEM_WRITE")
UC_HOOK_TLB_FILL = _const("UC_HOOK_TLB_FILL")
UC_HOOK_MEM_READ_PROT = _const("UC_HOOK_MEM_READ_PROT")
UC_HOOK_MEM_WRITE_PROT = _const("UC_HOOK_MEM_WRITE_PROT")
UC_HOOK_MEM_READ_UNMAPPED = _const("UC_HOOK_MEM_READ_UNMAPPED")
UC_HOOK_MEM_WRITE_UNMAPPED = _const("UC_HOOK_MEM_WRITE_UNMAPPED")
UC_HOOK_MEM_FETCH_UNMAPPED = _const("UC_HOOK_MEM_FETCH_UNMAPPED")
UC_MEM_WRITE_PROT = _const("UC_MEM_WRITE_PROT")
UC_MEM_WRITE_UNMAPPED = _const("UC_MEM_WRITE_UNMAPPED")
UC_MEM_FETCH_UNMAPPED = _const("UC_MEM_FETCH_UNMAPPED")
UC_PROT_ALL = _const("UC_PROT_ALL")
UC_PROT_READ = _const("UC_PROT_READ")
UC_PROT_WRITE = _const("UC_PROT_WRITE")
UC_PROT_EXEC = _const("UC_PROT_EXEC")
UC_ERR_OK = _const("UC_ERR_OK")
UC_ERR_INSN_INVALID = _const("UC_ERR_INSN_INVALID")

SLICE = 100_000
"""Instructions a free run executes at most before the vCPU thread looks for a kick: a few
milliseconds of guest time, the latency of a kick."""

_BINDING = importlib.import_module("unicorn.unicorn_py3.unicorn")
_LIB: Any = getattr(_BINDING, "uclib", None)


class EngineError(GuestDebugError):
    """Unicorn failed in a way the model does not expect (a bug here, not a guest event)."""


TCG_BUFFER_SIZE = 4 << 20
"""Bytes of translated code one engine keeps before it starts over (Unicorn's default is
1 GiB). Translated code is never freed one block at a time: when the model arms or disarms an
instruction breakpoint (or passes one to step over it), the blocks around it are dropped from
the lookup tables and translated again into fresh buffer space, which only a full flush
reclaims when the buffer is full. With the default, a long debug session grew the process by
about 2 KiB per vCPU for every breakpoint change, up to 1 GiB per vCPU (found by
``bench/soak.py``). 4 MiB holds the translations of any guest here many times over, so the
flush it causes every few thousand changes costs a retranslation of a small working set; the
suite checks that running on through such flushes stays exact (``-accel tcg,tb-size`` is
QEMU's name for the same knob)."""


MALLOC_THRESHOLD = 128 << 10
"""glibc's default mmap and trim thresholds, set explicitly by :func:`fix_malloc_thresholds`."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def fix_malloc_thresholds() -> bool:
    """Pin glibc's mmap and trim thresholds at their defaults (once per process; False where
    the C library has no ``mallopt``). Left dynamic, glibc raises both after a large block
    allocated with mmap is freed, and from then on blocks of that size come from the
    allocating thread's arena and their pages stay resident after they are freed. The
    engines' own large blocks, allocated and freed by every thread that runs an engine, made
    a long debug session grow by tens of MiB of free arena memory
    (docs/reference/unicorn.md §12). Setting a threshold explicitly turns the adjustment off
    (glibc ``mallopt``): blocks over 128 KiB are mapped and unmapped again, as before the
    first such free."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mmap_set = int(mallopt(_M_MMAP_THRESHOLD, MALLOC_THRESHOLD)) == 1
    trim_set = int(mallopt(_M_TRIM_THRESHOLD, MALLOC_THRESHOLD)) == 1
    return mmap_set and trim_set


def new_uc(arch: int, mode: int) -> Uc:
    """A Unicorn CPU with a bounded code buffer (:data:`TCG_BUFFER_SIZE`), in a process whose
    malloc thresholds are fixed (:func:`fix_malloc_thresholds`)."""
    fix_malloc_thresholds()
    uc = _UC_CLASS(arch, mode)
    uc.ctl_set_tcg_buffer_size(TCG_BUFFER_SIZE)
    return uc


def errno_of(err: Exception) -> int:
    """The ``uc_err`` of a UcError."""
    return int(getattr(err, "errno", -1))


class SlotMapper:
    """One engine's mapping of guest RAM: each slot mapped at its guest-physical address onto
    its piece of the shared host buffer (``mem_map_ptr``: the engine's accesses are the VMM's
    bytes), read-only slots with ``read_only_prot``.

    The slot table changes only while the vCPUs are parked, and a VMM reshaping it deletes and
    re-creates slots in several calls, so the engine catches up lazily: :meth:`sync`, called
    by the vCPU thread before it runs the engine, compares the table with what is mapped. An
    engine region still backed, page for page, by slots with the same host bytes and the same
    permission stays as it is (a slot split in three over the same buffer costs nothing);
    every other region is unmapped, and what the slots hold beyond the kept regions is mapped.
    A guest access to a guest-physical address in no slot then meets no mapping, whatever that
    does on the arch's host (its unmapped-memory hooks)."""

    def __init__(self, uc: Uc, memory: GuestMemory, read_only_prot: int = UC_PROT_ALL) -> None:
        self._uc = uc
        self._memory = memory
        self._read_only_prot = read_only_prot
        self._regions: list[tuple[int, int, int, int]] = []
        """(gpa, size, host address, permissions) of every region mapped here."""
        self._stale = True
        memory.on_slots_changed(self._changed)
        self.sync()

    def _changed(self) -> None:
        self._stale = True

    def prot(self, slot: RamSlot) -> int:
        return self._read_only_prot if slot.read_only else UC_PROT_ALL

    def base_prot(self, gpa: int) -> int:
        """The permissions guest RAM at ``gpa`` is mapped with (0 where nothing is mapped)."""
        region = self.region_at(gpa)
        return region[3] if region is not None else 0

    def region_at(self, gpa: int) -> tuple[int, int, int, int] | None:
        return next((r for r in self._regions if r[0] <= gpa < r[0] + r[1]), None)

    def sync(self) -> bool:
        """Bring the engine's mappings up to the slot table; True when any changed (the caller
        then drops its translations)."""
        if not self._stale:
            return False
        self._stale = False
        slots = self._memory.slots
        kept = [r for r in self._regions if self._still_backed(r, slots)]
        dropped = [r for r in self._regions if r not in kept]
        for gpa, size, _, _ in dropped:
            self._uc.mem_unmap(gpa, size)
        added: list[tuple[int, int, int, int]] = []
        for slot in slots:
            for lo, hi in _uncovered(slot.gpa, slot.end, [(r[0], r[0] + r[1]) for r in kept]):
                region = (lo, hi - lo, slot.address + lo - slot.gpa, self.prot(slot))
                self._uc.mem_map_ptr(*region[:2], region[3], region[2])
                added.append(region)
        self._regions = sorted(kept + added)
        return bool(dropped or added)

    def _still_backed(self, region: tuple[int, int, int, int], slots: Sequence[RamSlot]) -> bool:
        gpa, size, address, prot = region
        covered = 0
        for s in slots:
            lo, hi = max(gpa, s.gpa), min(gpa + size, s.end)
            if lo >= hi:
                continue
            if s.address - s.gpa != address - gpa or self.prot(s) != prot:
                return False
            covered += hi - lo
        return covered == size


def _uncovered(lo: int, hi: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi)`` outside every range of ``taken``."""
    parts = [(lo, hi)]
    for t_lo, t_hi in taken:
        parts = [
            piece
            for p_lo, p_hi in parts
            for piece in ((p_lo, min(p_hi, t_lo)), (max(p_lo, t_hi), p_hi))
            if piece[0] < piece[1]
        ]
    return parts


def _raw_function(name: str) -> Any:
    """Unicorn's C function ``name`` without the binding's ``argtypes``: called with ctypes
    objects only (a handle, arrays, a ``c_int``), so a call converts no argument."""
    fn = getattr(_LIB, name)
    return type(fn)((name, _LIB))


_CTL_TB_REMOVE_CACHE = (
    (_const("UC_CTL_IO_WRITE") << 30) | (2 << 26) | _const("UC_CTL_TB_REMOVE_CACHE")
)
"""``uc_ctl``'s code for UC_CTL_TB_REMOVE_CACHE written with two arguments (the encoding of
``UC_CTL_WRITE`` in ``unicorn.h``)."""


_CTL_TLB_FLUSH = (_const("UC_CTL_IO_WRITE") << 30) | _const("UC_CTL_TLB_FLUSH")
"""``uc_ctl``'s code for UC_CTL_TLB_FLUSH, written without arguments."""


class TranslationDropper:
    """``uc.ctl_remove_cache(lo, hi)`` as one C call with ready-made arguments (the binding
    builds them through three Python calls); the binding where its internals differ. A trap
    word written or removed drops the translations around it, twice per breakpoint hit.

    Unicorn finds the page to drop by a fetch walk of ``lo``, which leaves a TLB entry for it.
    Where that entry carries the page table's permissions (x86), a load through it skips the
    page's protection, so a page read-protected for a watchpoint stops faulting until the TLB
    is flushed (:meth:`flush_tlb`; docs/reference/unicorn.md §13). A virtual TLB (the e500
    engines) fills it with execute permission only, which opens nothing (§3)."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._handle = getattr(uc, "_uch", None)
        self._fast = _LIB is not None and isinstance(self._handle, ctypes.c_void_p)
        if self._fast:
            self._ctl = _raw_function("uc_ctl")
            self._code = ctypes.c_int(_CTL_TB_REMOVE_CACHE)
            self._tlb_code = ctypes.c_int(_CTL_TLB_FLUSH)

    def __call__(self, lo: int, hi: int) -> None:
        if not self._fast:
            self._uc.ctl_remove_cache(lo, hi)
            return
        status = self._ctl(self._handle, self._code, ctypes.c_uint64(lo), ctypes.c_uint64(hi))
        if status != UC_ERR_OK:
            raise UcError(status)

    def flush_tlb(self) -> None:
        """Empty the engine's TLB (every later access walks again and meets the protection
        of its page)."""
        if not self._fast:
            self._uc.ctl(_const("UC_CTL_TLB_FLUSH"), _const("UC_CTL_IO_WRITE"))
            return
        status = self._ctl(self._handle, self._tlb_code)
        if status != UC_ERR_OK:
            raise UcError(status)


_HOOK_MEM_CFUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int, ctypes.c_int64,
    ctypes.c_void_p,
)  # fmt: skip
"""``uc_cb_hookmem_t``: engine, access type, guest-physical address, size, value, user data."""


class StoreRecorder:
    """Every store the engine makes between :meth:`start` and :meth:`stop`, as (guest-physical
    address, size, value) in the order they were made.

    A ``UC_HOOK_MEM_WRITE`` hook exists only while recording: while any memory hook exists,
    Unicorn translates every load and store of the blocks it translates as a call to its
    slow-path helper, for as long as those blocks stay cached (``tcg_uc_has_hookmem``), which
    slows a free run down (docs/reference/unicorn.md §13). Stores reach the hook whenever
    their block was translated: the engines' protection hooks keep every RAM page "not dirty"
    for the TLB, so every store goes through the helper that calls the memory hooks. The hook
    is added and deleted with one C call each on ready-made arguments and one C callback made
    once (the binding builds a new callback per ``hook_add``); the binding where its internals
    differ."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self.writes: list[tuple[int, int, int]] = []
        self._hook: int | None = None
        self._handle = getattr(uc, "_uch", None)
        self._fast = _LIB is not None and isinstance(self._handle, ctypes.c_void_p)
        if self._fast:
            self._add = _raw_function("uc_hook_add")
            self._del = _raw_function("uc_hook_del")
            self._callback = _HOOK_MEM_CFUNC(self._record)
            self._hh = ctypes.c_size_t()
            self._hh_ref = ctypes.byref(self._hh)
            self._type = ctypes.c_int(UC_HOOK_MEM_WRITE)
            self._null = ctypes.c_void_p(0)
            self._begin, self._end = ctypes.c_uint64(1), ctypes.c_uint64(0)  # every address

    def _record(
        self, uc: object, access: int, address: int, size: int, value: int, user: object
    ) -> None:
        self.writes.append((address, size, value & ((1 << (8 * size)) - 1)))

    def _on_write(
        self, uc: Uc, access: int, address: int, size: int, value: int, user_data: object
    ) -> None:
        self._record(uc, access, address, size, value, user_data)

    def start(self) -> None:
        self.writes = []
        if not self._fast:
            self._hook = self._uc.hook_add(UC_HOOK_MEM_WRITE, self._on_write)
            return
        status = self._add(
            self._handle, self._hh_ref, self._type, self._callback, self._null, self._begin,
            self._end,
        )  # fmt: skip
        if status != UC_ERR_OK:
            raise UcError(status)
        self._hook = self._hh.value

    def stop(self) -> list[tuple[int, int, int]]:
        hook, self._hook = self._hook, None
        if hook is not None:
            if not self._fast:
                self._uc.hook_del(hook)
            else:
                status = self._del(self._handle, ctypes.c_size_t(hook))
                if status != UC_ERR_OK:
                    raise UcError(status)
        writes, self.writes = self.writes, []
        return writes


class RegionSwitch:
    """``mem_unmap`` and ``mem_map_ptr`` as one C call each on ready-made arguments (the
    binding where its internals differ): a store into a read-only slot on the x86 host maps
    the slot's region onto a private copy and back."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._handle = getattr(uc, "_uch", None)
        self._fast = _LIB is not None and isinstance(self._handle, ctypes.c_void_p)
        if self._fast:
            self._unmap = _raw_function("uc_mem_unmap")
            self._map_ptr = _raw_function("uc_mem_map_ptr")

    def remap(self, gpa: int, size: int, prot: int, address: int) -> None:
        """Map ``[gpa, gpa + size)``, mapped now, onto host ``address`` with ``prot``."""
        if not self._fast:
            self._uc.mem_unmap(gpa, size)
            self._uc.mem_map_ptr(gpa, size, prot, address)
            return
        at, n = ctypes.c_uint64(gpa), ctypes.c_size_t(size)
        status = self._unmap(self._handle, at, n)
        if status == UC_ERR_OK:
            status = self._map_ptr(
                self._handle, at, n, ctypes.c_uint32(prot), ctypes.c_void_p(address)
            )
        if status != UC_ERR_OK:
            raise UcError(status)


_CTL_UC_EXITS_WRITE = (_const("UC_CTL_IO_WRITE") << 30) | (2 << 26) | _const("UC_CTL_UC_EXITS")
"""``uc_ctl``'s code for writing UC_CTL_UC_EXITS (an array and its length)."""
_EXIT_SETS = 8
"""Exit sets an :class:`ExitSetter` keeps ready-made arguments for."""


class ExitSetter:
    """``uc.ctl_set_exits`` that remembers what Unicorn holds: asking for the exits it already
    has is no call at all, and a change is one C call on ready-made arguments (the binding
    builds the array, a cast and the code through several Python calls). Unicorn copies the
    addresses into its own tree (``uc_ctl`` UC_CTL_UC_EXITS), so an array can be passed
    again: the few exit sets a vCPU alternates between (a breakpoint's pass: the armed
    addresses with and without a step's own exit) keep theirs. The binding where its
    internals differ."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._handle = getattr(uc, "_uch", None)
        self._fast = _LIB is not None and isinstance(self._handle, ctypes.c_void_p)
        self._held: frozenset[int] | None = None
        """The exits Unicorn holds (None: not known, the next call sets them)."""
        self._args: dict[frozenset[int], tuple[Any, Any]] = {}
        """Exit set -> (array, count) for ``uc_ctl``, a few at a time."""
        if self._fast:
            self._ctl = _raw_function("uc_ctl")
            self._code = ctypes.c_int(_CTL_UC_EXITS_WRITE)

    @property
    def held(self) -> frozenset[int] | None:
        return self._held

    def __call__(self, exits: frozenset[int]) -> None:
        if exits == self._held:
            return
        self._held = None  # unknown until the call succeeded
        if not self._fast:
            self._uc.ctl_set_exits(sorted(exits))
        else:
            args = self._args.get(exits)
            if args is None:
                if len(self._args) >= _EXIT_SETS:
                    self._args.clear()
                ordered = sorted(exits)
                array = (ctypes.c_uint64 * max(1, len(ordered)))(*ordered)
                args = self._args[exits] = (array, ctypes.c_size_t(len(ordered)))
            status = self._ctl(self._handle, self._code, *args)
            if status != UC_ERR_OK:
                raise UcError(status)
        self._held = exits


_INTR_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)


class InterruptHook:
    """A UC_HOOK_INTR hook that Unicorn calls as ``callback(intno)`` straight from C, and
    :meth:`stop` (``uc_emu_stop``) for it to end the run with. The binding's hook passes
    through two Python frames of its own, and its ``emu_stop`` converts its argument; an
    engine whose every trap, system call and privileged instruction is an interrupt pays
    both at each. The exception guard is the binding's: the first exception a callback
    raises is kept in the CPU's ``_hook_exception`` and the run stopped, so ``emu_start``
    raises it. The binding's own hook where its internals differ."""

    def __init__(self, uc: Uc, callback: Callable[[int], None]) -> None:
        handle = getattr(uc, "_uch", None)
        hook_type = getattr(_BINDING, "uc_hook_h", None)
        fast = (
            _LIB is not None
            and isinstance(handle, ctypes.c_void_p)
            and hook_type is not None
            and hasattr(uc, "_hook_exception")
            and isinstance(getattr(uc, "_callbacks", None), dict)
        )
        self._uc = uc
        self._fast = fast
        if not fast:
            uc.hook_add(UC_HOOK_INTR, lambda _uc, intno, _ud: callback(intno))
            return
        self._handle = handle
        self._emu_stop = _raw_function("uc_emu_stop")
        raw_stop = self._emu_stop

        def entry(_engine: object, intno: int, _ud: object) -> None:
            try:
                callback(intno)
            except BaseException as e:  # the binding's guard (its ``uccallback``)
                if uc._hook_exception is None:
                    uc._hook_exception = e
                raw_stop(handle)

        fptr = _INTR_CFUNC(entry)
        assert hook_type is not None
        hook = hook_type()
        status = _LIB.uc_hook_add(
            handle,
            ctypes.byref(hook),
            UC_HOOK_INTR,
            ctypes.cast(fptr, ctypes.c_void_p),
            None,
            ctypes.c_uint64(1),
            ctypes.c_uint64(0),
        )
        if status != UC_ERR_OK:
            raise UcError(status)
        uc._callbacks[hook.value] = fptr  # kept alive with the CPU, as the binding does

    def stop(self) -> None:
        """``uc.emu_stop()``, from inside the run."""
        if not self._fast:
            self._uc.emu_stop()
            return
        status = self._emu_stop(self._handle)
        if status != UC_ERR_OK:
            raise UcError(status)


_TLB_FILL_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
    ctypes.c_void_p,
)  # fmt: skip
"""``uc_cb_tlbevent_t``: engine, page address, access type, ``uc_tlb_entry *``, user data."""


class _TlbEntry(ctypes.Structure):
    """``uc_tlb_entry``: the physical page and the ``UC_PROT_*`` a virtual-TLB fill gives."""

    _fields_ = (("paddr", ctypes.c_uint64), ("perms", ctypes.c_uint32))


ACCESS_PROT = {
    _const("UC_MEM_READ"): UC_PROT_READ,
    _const("UC_MEM_WRITE"): UC_PROT_WRITE,
    _const("UC_MEM_FETCH"): UC_PROT_EXEC,
}
"""The access type a TLB fill is made for -> the one permission Unicorn's own virtual-TLB fill
gives the entry."""


class IdentityTlbFill:
    """A ``UC_HOOK_TLB_FILL`` hook for an engine in virtual-TLB mode: effective = physical
    address, and the entry gets the permissions ``perms(page, access_prot)`` returns (the
    engine's own check of the page's protection stays on the TLB's slow path as before), called
    straight from C. The binding's hook where its internals differ.

    Without a hook Unicorn gives an entry only the permission of the access that filled it
    (``access_prot``), so a load and a store to one page refill its entry in turn, and QEMU
    counts every refill of an entry as one more entry in use (``tlb_set_page_with_attrs``
    decrements only when it evicts another page). Its dynamic TLB sizing doubles the table at a
    full flush when that count exceeds 70 % of the table (``tlb_mmu_resize_locked``): a guest
    loop with a load and a store on one page drove each engine's table to its largest size
    (2^20 entries, 40 MiB with the I/O part, allocated, filled and later freed again) and made
    every full flush clear all of it (docs/reference/unicorn.md §12). An entry filled with
    every permission the page may have is filled once."""

    def __init__(self, uc: Uc, perms: Callable[[int, int], int]) -> None:
        self._perms = perms
        handle = getattr(uc, "_uch", None)
        hook_type = getattr(_BINDING, "uc_hook_h", None)
        fast = (
            _LIB is not None
            and isinstance(handle, ctypes.c_void_p)
            and hook_type is not None
            and isinstance(getattr(uc, "_callbacks", None), dict)
        )
        if not fast:
            uc.hook_add(UC_HOOK_TLB_FILL, self._binding_fill)
            return
        fptr = _TLB_FILL_CFUNC(self._fill)
        assert hook_type is not None
        hook = hook_type()
        status = _LIB.uc_hook_add(
            handle,
            ctypes.byref(hook),
            UC_HOOK_TLB_FILL,
            ctypes.cast(fptr, ctypes.c_void_p),
            None,
            ctypes.c_uint64(1),
            ctypes.c_uint64(0),
        )
        if status != UC_ERR_OK:
            raise UcError(status)
        uc._callbacks[hook.value] = fptr  # kept alive with the CPU, as the binding does

    def _fill(self, _engine: object, page: int, access: int, entry: int, _ud: object) -> bool:
        wanted = ACCESS_PROT.get(access, 0)
        try:
            perms = self._perms(page, wanted)
        except BaseException:  # never leave C with an exception: Unicorn's own fill instead
            perms = wanted
        e = _TlbEntry.from_address(entry)
        e.paddr = page
        e.perms = perms
        return True

    def _binding_fill(self, _uc: Uc, page: int, access: int, entry: Any, _ud: object) -> bool:
        entry.paddr = page
        entry.perms = self._perms(page, ACCESS_PROT.get(access, 0))
        return True


class RegisterBank:
    """A fixed list of registers read and written with one ``uc_reg_read_batch`` /
    ``uc_reg_write_batch`` call on preallocated arrays (64-bit slots in host byte order;
    narrower registers fill the low part). Falls back to the binding where its internals are
    not the expected ones.

    Reads and writes use separate value arrays: Unicorn fills each read slot as wide as its
    register is, always the same width, so the bytes above a narrow register stay the zeros
    they were allocated as and a read needs no clearing first. The C functions are called
    with ready-made ctypes arguments (:func:`_raw_function`): KVM_GET_REGS reads a bank on
    every stop, and the binding's argument conversion cost more than the batch read itself
    (``bench/vs_qemu.py`` times the emulated host's ioctls)."""

    def __init__(self, uc: Uc, ids: Sequence[int]) -> None:
        n = len(ids)
        self._uc = uc
        self._list = list(ids)
        self._n = n
        self._ids = (ctypes.c_int * n)(*ids)
        self._vals = (ctypes.c_uint64 * n)()
        self._wvals = (ctypes.c_uint64 * n)()
        self._ptrs = self._pointers(self._vals)
        self._wptrs = self._pointers(self._wvals)
        self._count = ctypes.c_int(n)
        self._unpack = struct.Struct(f"={n}Q").unpack
        self._pack_into = struct.Struct(f"={n}Q").pack_into
        self._handle = getattr(uc, "_uch", None)
        self._fast = _LIB is not None and isinstance(self._handle, ctypes.c_void_p)
        if self._fast:
            self._read_batch = _raw_function("uc_reg_read_batch")
            self._write_batch = _raw_function("uc_reg_write_batch")

    def _pointers(self, vals: ctypes.Array[ctypes.c_uint64]) -> ctypes.Array[ctypes.c_void_p]:
        base = ctypes.addressof(vals)
        return (ctypes.c_void_p * self._n)(*(base + 8 * i for i in range(self._n)))

    def read(self) -> list[int]:
        if not self._fast:
            return [int(v) for v in self._uc.reg_read_batch(self._list)]
        status = self._read_batch(self._handle, self._ids, self._ptrs, self._count)
        if status != UC_ERR_OK:
            raise UcError(status)
        return list(self._unpack(self._vals))

    def write(self, values: Iterable[int]) -> None:
        if not self._fast:
            self._uc.reg_write_batch(list(zip(self._list, values, strict=True)))
            return
        vals = self._wvals
        if not isinstance(values, (list, tuple)):
            values = tuple(values)
        try:
            self._pack_into(vals, 0, *values)  # one C call when every value fits a u64
        except struct.error:
            if len(values) != self._n:
                raise ValueError(f"{len(values)} values for {self._n} registers") from None
            for i, v in enumerate(values):
                vals[i] = v & 0xFFFFFFFFFFFFFFFF
        status = self._write_batch(self._handle, self._ids, self._wptrs, self._count)
        if status != UC_ERR_OK:
            raise UcError(status)


_HANDLE_SCAN = 4096
"""Bytes of Unicorn's engine structure read for pointers by :func:`find_reachable` and
:func:`discover_reachable`."""
_POINTEE_SCAN = 1 << 18
"""Bytes searched after each such pointer by :func:`discover_reachable`."""

Hint = tuple[int, int]
"""(offset in Unicorn's engine structure of a pointer, offset after where it points)."""


def readable_ranges() -> list[tuple[int, int]]:
    """This process's readable mappings, from ``/proc/self/maps``."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            if perms[0] == "r":
                lo, hi = span.split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def _readable(ranges: Sequence[tuple[int, int]], at: int, n: int) -> int:
    """Bytes readable from ``at`` in ``ranges``, up to ``n``."""
    for lo, hi in ranges:
        if lo <= at < hi:
            return min(n, hi - at)
    return 0


def _handle_pointers(uc: Uc, ranges: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    handle = uc._uch.value
    if _readable(ranges, handle, _HANDLE_SCAN) < _HANDLE_SCAN:
        raise EngineError("Unicorn's engine structure is not where its handle says")
    return struct.unpack(f"={_HANDLE_SCAN // 8}Q", ctypes.string_at(handle, _HANDLE_SCAN))


def find_reachable(uc: Uc, needle: bytes, hints: Sequence[Hint]) -> int | None:
    """Where ``needle`` lies, by ``hints``: for each (offset, distance), the pointer at that
    offset in ``uc``'s engine structure plus the distance, if ``needle`` is there. For reading
    a part of the CPU state the register API does not reach: the caller writes a pattern
    through the API first and passes it as ``needle``; the hints are the caller's, found once
    for a Unicorn build by :func:`discover_reachable`. Reads only the engine structure and, at
    each hint, ``len(needle)`` bytes of a readable mapping. None when no hint leads there (a
    different build): the caller then does without. The address is good while ``uc`` lives."""
    ranges = readable_ranges()
    pointers = _handle_pointers(uc, ranges)
    for off, delta in hints:
        if not 0 <= off < _HANDLE_SCAN or off % 8:
            continue
        at = pointers[off // 8] + delta
        n = len(needle)
        if _readable(ranges, at, n) == n and ctypes.string_at(at, n) == needle:
            return at
    return None


def discover_reachable(uc: Uc, needle: bytes) -> list[Hint]:
    """Every (offset, distance) that leads from ``uc``'s engine structure to ``needle``, by
    reading up to 256 KiB after each pointer the structure holds. For finding the hints of a
    new Unicorn build in a test or a tool, never on a running VMM's path: it reads memory that
    other threads own and may free while it reads."""
    ranges = readable_ranges()
    led: list[Hint] = []
    for n, ptr in enumerate(_handle_pointers(uc, ranges)):
        if ptr % 8 or ptr < _HANDLE_SCAN:
            continue
        size = _readable(ranges, ptr, _POINTEE_SCAN)
        if size < len(needle):
            continue
        k = ctypes.string_at(ptr, size).find(needle)
        if k >= 0:
            led.append((8 * n, k))
    return led


_COUNTER_SCAN = 2048
"""Bytes of Unicorn's engine structure searched for its instruction counter."""


@functools.cache
def _counter_offset(arch: int, mode: int, nop: bytes) -> int:
    """Where Unicorn keeps ``emu_counter`` (followed by ``emu_count``) in its engine structure:
    the one place that holds (count + 1, count) after a run of ``count`` one-instruction
    ``nop`` words, for two different counts."""
    found: set[int] | None = None
    for count in (23, 41):
        uc = new_uc(arch, mode)
        uc.mem_map(0, 0x1000, UC_PROT_ALL)
        uc.mem_write(0, nop * 64)
        uc.emu_start(0, 0x1000, count=count)
        raw = ctypes.string_at(uc._uch, _COUNTER_SCAN)
        hits = {
            off
            for off in range(0, _COUNTER_SCAN - 15, 8)
            if struct.unpack_from("=QQ", raw, off) == (count + 1, count)
        }
        found = hits if found is None else found & hits
    if found is None or len(found) != 1:
        raise EngineError(f"cannot find this Unicorn's instruction counter ({found})")
    return found.pop()


class InstructionCount:
    """How many instructions the last ``emu_start`` of ``uc`` executed (Unicorn's own counter,
    which the count hook increments before each instruction: a run of ``count`` that ran out
    reads ``count + 1``). ``nop`` is a one-instruction word of the arch, used once per process
    to find the counter."""

    def __init__(self, uc: Uc, arch: int, mode: int, nop: bytes) -> None:
        handle = uc._uch.value
        self._counter = ctypes.c_uint64.from_address(handle + _counter_offset(arch, mode, nop))

    def ran_out(self, count: int) -> bool:
        """The last run stopped because its ``count`` was used up."""
        return int(self._counter.value) > count
