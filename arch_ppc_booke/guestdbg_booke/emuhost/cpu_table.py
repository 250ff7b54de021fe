"""Unicorn's 64-bit PowerPC CPU models selected right: a guarded, in-process fix of its CPU table.

Unicorn 2.1.4 selects the wrong CPU for every 64-bit PowerPC model (upstream issue 1779,
``docs/reference/unicorn.md`` §10): its ppc64 build keeps one table of CPU definitions, the
32-bit models first, and the 64-bit model numbers start again at 0. ``cpu_ppc_init`` offsets the
number by the count of 32-bit models when it checks the range but not when it looks the entry
up, so ``UC_CPU_PPC64_E5500`` (0) builds a PowerPC 401 and ``UC_CPU_PPC64_E6500`` (1) a 401A1.

The e5500/e6500 hosts need the right cores, and the fix is not released, so
:func:`ensure_ppc64_models` repairs the loaded library once per process, carefully:

1. **Detect first.** A PPC64 engine with model E5500 (and E6500) runs ``mfpvr``. QEMU's e5500 and
   e6500 PVRs (``target/ppc/cpu-models.h``) mean this Unicorn is right (fixed upstream, or fixed
   here already): nothing is done. The 401/401A1 PVRs mean the known bug. Anything else is an
   ``EngineError`` naming what was read.
2. **Find the table** (:func:`find_loaded_table`): the runtime address of the string "e5500" in
   the loaded ``libunicorn``, the 24-byte entries (``{const char *name; u32 pvr; u32 svr;
   family_init}``) whose name points at it, and from the one at index ``UC_CPU_PPC32_7457A_V1_2
   + 1`` the table start. The ppc64 build's table is the one that has an "e5500" entry.
3. **Check every entry it swaps**: entries 0 and 1 must be named "401" and "401a1", the entries
   at the 64-bit offset "e5500" and "e6500" with QEMU's PVRs. Any other layout is an
   ``EngineError`` naming the names found; nothing is written.
4. **Swap** entries 0/1 with the e5500/e6500 entries, the table's read-only (RELRO) pages made
   writable for the swap alone and given their protection back.
5. **Verify** with ``mfpvr`` that the models now read QEMU's PVRs; if not, the swap is undone and
   an ``EngineError`` says so.

What it changes: the ppc64 build's models 0 and 1 become e5500 and e6500, and the two 401
entries move where nothing selects them. Every other 64-bit model number stays as wrong as it
was (model 2, the 970, still selects "401b2"); the 32-bit build's own table is not touched.
The swap happens under a lock and before the first e5500/e6500 engine is made; a thread that
creates a ppc64 Unicorn engine at that same moment outside guestdbg could read a half-swapped
entry, which is why the engine calls this before it creates its own.
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import os
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from unicorn import ppc_const as ppc

from guestdbg.emuhost import unicorn as ucc
from guestdbg.emuhost.unicorn import EngineError, UcError

PPC64_MODELS = {"e5500": int(ppc.UC_CPU_PPC64_E5500), "e6500": int(ppc.UC_CPU_PPC64_E6500)}
"""The Unicorn model numbers of the cores the 64-bit hosts run."""
PVR = {"e5500": 0x80240020, "e6500": 0x80400020}
"""QEMU's ``CPU_POWERPC_e5500`` / ``CPU_POWERPC_e6500`` (``target/ppc/cpu-models.h``)."""
BUGGY_PVR = {"e5500": 0x00270000, "e6500": 0x00210000}
"""What the bug gives instead: the PVRs of table entries 0 and 1, the 401 and the 401A1."""
FIRST_PPC64 = int(ppc.UC_CPU_PPC32_7457A_V1_2) + 1
"""Index of the first 64-bit model in the ppc64 build's table (the range check's offset)."""
EXPECTED_NAMES = {0: "401", 1: "401a1", FIRST_PPC64: "e5500", FIRST_PPC64 + 1: "e6500"}
SWAPS = ((0, FIRST_PPC64), (1, FIRST_PPC64 + 1))
ENTRY_SIZE = 24
_NAME_MAX = 64
_MFPVR_R3 = 0x7C7F42A6


class CpuTable(Protocol):
    """A view of a ``PowerPCCPUInfo ppc_cpus[]`` table."""

    where: str
    """Where the table is, for error messages."""

    def name(self, index: int) -> str | None: ...

    def pvr(self, index: int) -> int: ...

    def swap(self, pairs: Sequence[tuple[int, int]]) -> None: ...


def probe_pvr(model: int) -> int:
    """The PVR ``mfpvr`` reads on a fresh 64-bit big-endian Unicorn engine of ``model``."""
    uc = ucc.new_uc(ucc.UC_ARCH_PPC, ucc.UC_MODE_PPC64 | ucc.UC_MODE_BIG_ENDIAN)
    uc.ctl_set_cpu_model(model)
    uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
    uc.mem_map(0, 0x1000, ucc.UC_PROT_ALL)
    uc.mem_write(0, _MFPVR_R3.to_bytes(4, "big"))
    try:
        uc.emu_start(0, 0x1000, count=1)
    except UcError as e:
        raise EngineError(f"mfpvr on Unicorn PowerPC model {model} failed: {e}") from e
    return int(uc.reg_read(ppc.UC_PPC_REG_3))


def fix_cpu_table(table: CpuTable, probe: Callable[[int], int] = probe_pvr) -> None:
    """Steps 3-5 of the module docstring on ``table``: check, swap, verify (undo on failure)."""
    found = {i: table.name(i) for i in EXPECTED_NAMES}
    if found != EXPECTED_NAMES:
        raise EngineError(
            f"Unicorn's CPU table at {table.where} is not the one guestdbg knows how to fix: "
            f"entries {found}, expected {EXPECTED_NAMES}; nothing was changed"
        )
    pvrs = {name: table.pvr(FIRST_PPC64 + n) for n, name in enumerate(PVR)}
    if pvrs != PVR:
        raise EngineError(
            f"Unicorn's CPU table at {table.where} gives e5500/e6500 the PVRs {_hex(pvrs)}, "
            f"not QEMU's {_hex(PVR)}; nothing was changed"
        )
    table.swap(SWAPS)
    got = {name: probe(PPC64_MODELS[name]) for name in PVR}
    if got != PVR:
        table.swap(SWAPS)
        raise EngineError(
            f"after swapping Unicorn's CPU table at {table.where} the 64-bit models read PVRs "
            f"{_hex(got)}, not {_hex(PVR)}; the swap was undone"
        )


def _hex(d: dict[str, int]) -> dict[str, str]:
    return {k: f"{v:#x}" for k, v in d.items()}


@dataclass
class _Once:
    done: bool = False
    failure: EngineError | None = None


_lock = threading.Lock()
_once = _Once()


def ensure_ppc64_models(
    lookup: Callable[[], CpuTable] | None = None, probe: Callable[[int], int] = probe_pvr
) -> None:
    """Make ``UC_CPU_PPC64_E5500``/``E6500`` select e5500/e6500 in this process, or raise an
    ``EngineError`` (the same one on every later call). Idempotent and thread-safe."""
    with _lock:
        if _once.done:
            return
        if _once.failure is not None:
            raise _once.failure
        try:
            got = {name: probe(model) for name, model in PPC64_MODELS.items()}
            if got == BUGGY_PVR:
                fix_cpu_table((lookup or find_loaded_table)(), probe)
            elif got != PVR:
                raise EngineError(
                    f"Unicorn's 64-bit PowerPC models read PVRs {_hex(got)}: neither QEMU's "
                    f"{_hex(PVR)} nor the known wrong selection {_hex(BUGGY_PVR)}"
                )
        except EngineError as e:
            _once.failure = e
            raise
        _once.done = True


# -- the table in the loaded library ----------------------------------------------------------


@dataclass(frozen=True)
class _Mapping:
    lo: int
    hi: int
    perms: str

    def holds(self, addr: int, size: int = 1) -> bool:
        return self.lo <= addr and addr + size <= self.hi


def _library_path() -> Path:
    lib: Any = getattr(importlib.import_module("unicorn.unicorn_py3.unicorn"), "uclib", None)
    name = getattr(lib, "_name", None)
    if not isinstance(name, str):
        raise EngineError("cannot tell which libunicorn this process loaded")
    return Path(os.path.realpath(name))


def _mappings(lib: Path) -> list[_Mapping]:
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError as e:
        raise EngineError(f"cannot read /proc/self/maps to find Unicorn's CPU table: {e}") from e
    out = []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and os.path.realpath(parts[5]) == str(lib):
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append(_Mapping(lo, hi, parts[1]))
    if not out:
        raise EngineError(f"{lib} is not mapped in this process")
    return out


def _find_all(data: bytes, pattern: bytes) -> list[int]:
    hits = []
    i = data.find(pattern)
    while i >= 0:
        hits.append(i)
        i = data.find(pattern, i + 1)
    return hits


class LoadedTable:
    """The ppc64 build's ``ppc_cpus`` in the loaded library (read in place, written by
    :meth:`swap` only)."""

    def __init__(self, base: int, maps: list[_Mapping], lib: Path) -> None:
        self.base = base
        self._maps = maps
        self.where = f"{base:#x} in {lib.name}"

    def _mapping(self, addr: int, size: int) -> _Mapping | None:
        return next((m for m in self._maps if m.holds(addr, size) and "r" in m.perms), None)

    def _entry(self, index: int) -> tuple[int, int, int, int]:
        addr = self.base + ENTRY_SIZE * index
        if self._mapping(addr, ENTRY_SIZE) is None:
            raise EngineError(f"entry {index} of the table at {self.where} is not mapped")
        name, pvr, svr, init = struct.unpack("=QIIQ", ctypes.string_at(addr, ENTRY_SIZE))
        return name, pvr, svr, init

    def name(self, index: int) -> str | None:
        ptr = self._entry(index)[0]
        m = self._mapping(ptr, 1)
        if m is None:
            return None
        raw = ctypes.string_at(ptr, min(_NAME_MAX, m.hi - ptr))
        end = raw.find(b"\0")
        return raw[:end].decode("ascii", "replace") if end >= 0 else None

    def pvr(self, index: int) -> int:
        return self._entry(index)[1]

    def swap(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Exchange the entries of each pair with the pages made writable for this alone."""
        addrs = [self.base + ENTRY_SIZE * i for pair in pairs for i in pair]
        page = os.sysconf("SC_PAGE_SIZE")
        lo = min(addrs) & ~(page - 1)
        hi = (max(addrs) + ENTRY_SIZE + page - 1) & ~(page - 1)
        m = self._mapping(lo, hi - lo)
        if m is None:
            raise EngineError(f"the table at {self.where} spans more than one mapping")
        prot = (1 if "r" in m.perms else 0) | (2 if "w" in m.perms else 0)
        _mprotect(lo, hi - lo, prot | 2)
        try:
            for i, j in pairs:
                a, b = self.base + ENTRY_SIZE * i, self.base + ENTRY_SIZE * j
                ea, eb = ctypes.string_at(a, ENTRY_SIZE), ctypes.string_at(b, ENTRY_SIZE)
                ctypes.memmove(a, eb, ENTRY_SIZE)
                ctypes.memmove(b, ea, ENTRY_SIZE)
        finally:
            _mprotect(lo, hi - lo, prot)


def _mprotect(addr: int, size: int, prot: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(addr, size, prot) != 0:
        err = ctypes.get_errno()
        raise EngineError(
            f"mprotect({addr:#x}, {size:#x}, {prot}) failed: {errno.errorcode.get(err, err)}"
        )


def find_loaded_table() -> LoadedTable:
    """The ppc64 build's CPU table in the loaded ``libunicorn``: the one table whose entry at
    :data:`FIRST_PPC64` is named "e5500" (``EngineError`` if there is none or more than one)."""
    lib = _library_path()
    maps = _mappings(lib)
    readable = [m for m in maps if "r" in m.perms]
    blobs = [(m, ctypes.string_at(m.lo, m.hi - m.lo)) for m in readable]
    strings = [m.lo + i for m, data in blobs for i in _find_all(data, b"e5500\0")]
    bases = set()
    for s in strings:
        pattern = struct.pack("=Q", s)
        for m, data in blobs:
            if "x" in m.perms:
                continue
            for i in _find_all(data, pattern):
                entry = m.lo + i
                base = entry - ENTRY_SIZE * FIRST_PPC64
                if entry % 8 == 0 and m.holds(base, ENTRY_SIZE * (FIRST_PPC64 + 2)):
                    bases.add(base)
    if len(bases) != 1:
        raise EngineError(
            f"expected one CPU table with an 'e5500' entry at index {FIRST_PPC64} in {lib}, "
            f"found {len(bases)} ({len(strings)} 'e5500' strings)"
        )
    return LoadedTable(bases.pop(), maps, lib)
