"""XER as the guest's ``mfxer`` reads it, without running ``mfxer``.

QEMU (and so Unicorn) keeps XER[SO], XER[OV] and XER[CA] in fields of their own
(``env->so``, ``env->ov``, ``env->ca``) and puts them together only in ``cpu_read_xer``: on
these cores (no ISA 3.0 OV32/CA32) ``env->xer | so << 31 | ov << 30 | ca << 29``. The register
API returns ``env->xer`` alone, so the engine ran an ``mfxer`` stub for every KVM_GET_REGS
after a guest run: about 5 µs of each emulated exit, the largest single part of a register
read. This module reads the four words where they are instead (about 0.3 µs).

Where they are is a fact of one Unicorn build, so it is checked, never assumed:

1. the GPRs are set to a pattern through the register API and the pattern is looked for where
   :data:`HINTS` say ``env->gpr`` is: a pointer at a fixed offset of Unicorn's engine structure
   plus a fixed distance (:func:`guestdbg.emuhost.unicorn.find_reachable`). The hints were
   found for Unicorn 2.1.4 by a search of the memory that structure leads to
   (:func:`~guestdbg.emuhost.unicorn.discover_reachable`, which ``tests/emuhost/
   test_xer_flags.py`` runs to check them); an engine never searches memory itself, because
   other threads own that memory and may free it during a search;
2. XER is written by the ``mtxer`` stub with one flag at a time, then with a byte count alone:
   the one word near ``env->gpr`` (inside the CPU state) that takes the flag (the byte count)
   each time is that field.

Then every engine checks its reader against ``mfxer`` on a set of values written by ``mtxer``;
if a hint does not lead to the pattern (another Unicorn build), a field was not found, or any
value differs, the engine keeps the stub - a slower XER, never a wrong one. The fields found
are kept per register width for the process; the next engine checks them again.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from dataclasses import dataclass

from guestdbg.emuhost.unicorn import EngineError, Hint, RegisterBank, Uc, find_reachable

SO, OV, CA = 1 << 31, 1 << 30, 1 << 29
_BYTE_COUNT = 0x55
"""A byte count (XER bits 25-31) no flag shares a bit with."""
_CHECKS = (0, SO, OV, CA, SO | CA | 0x15, OV | 0x7F, SO | OV | CA | 0x40, 0x2A, SO | OV | CA)
"""XER values written and read back both ways on every engine."""
_SPAN = 4096
"""Bytes after ``env->gpr`` searched for the XER fields: they follow it closely in
``CPUPPCState`` (found 296-308 bytes after it on the 32-bit build, 568-592 on the 64-bit one),
and the span stays inside the CPU state, which is tens of KiB."""
_PATTERN = 0x5AC30000
"""GPR n holds ``_PATTERN + 0x0101 * n`` while ``env->gpr`` is looked for."""

WriteXer = Callable[[int], None]
ReadXer = Callable[[], int]


@dataclass(frozen=True)
class _Layout:
    xer: int
    so: int
    ov: int
    ca: int
    """Byte offsets from ``env->gpr[0]``."""


HINTS: dict[int, tuple[Hint, ...]] = {
    32: ((440, 40304), (2064, 40304)),
    64: ((440, 40384), (2040, 40384), (2064, 40384)),
}
"""Register width -> where pointers in Unicorn 2.1.4's engine structure lead to ``env->gpr``
(offset of the pointer, distance after where it points): what
:func:`~guestdbg.emuhost.unicorn.discover_reachable` finds on that build, the same in every
process (``uc->cpu`` and other pointers to the CPU object)."""

_layouts: dict[int, _Layout | None] = {}
"""Register width -> what was found (None: nothing usable; the engines use the stub)."""


def pattern_bytes(width: int) -> tuple[list[int], bytes]:
    """The GPR values :func:`reader` writes while it looks for ``env->gpr``, and their bytes as
    the CPU state holds them."""
    pattern = [_PATTERN + 0x0101 * n for n in range(32)]
    return pattern, struct.pack(f"=32{'Q' if width == 64 else 'I'}", *pattern)


def _gpr0(uc: Uc, gprs: RegisterBank, width: int) -> int | None:
    """Where ``env->gpr[0]`` lies (by :data:`HINTS`): the GPRs hold a pattern meanwhile, then
    their values."""
    saved = gprs.read()
    pattern, needle = pattern_bytes(width)
    try:
        gprs.write(pattern)
        return find_reachable(uc, needle, HINTS.get(width, ()))
    finally:
        gprs.write(saved)


def _words(at: int) -> memoryview:
    return memoryview(ctypes.string_at(at, _SPAN)).cast("I")


def _field(before: memoryview, after: memoryview, value: int) -> int:
    moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a == 0 and b == value]
    if len(moved) != 1:
        raise EngineError(f"XER value {value:#x} went to {len(moved)} words, not one")
    return 4 * moved[0]


def _find(gpr0: int, write: WriteXer) -> _Layout:
    write(0)
    base = _words(gpr0)
    offsets = []
    for value in (SO, OV, CA):
        write(value)
        offsets.append(_field(base, _words(gpr0), 1))
    write(_BYTE_COUNT)
    xer = _field(base, _words(gpr0), _BYTE_COUNT)
    return _Layout(xer, *offsets)


class XerReader:
    """``cpu_read_xer`` from outside, reading Unicorn's CPU state where it lies. Keeps ``uc``
    alive: the words are inside it."""

    def __init__(self, uc: Uc, gpr0: int, layout: _Layout) -> None:
        self._uc = uc
        word = ctypes.c_uint32.from_address
        self._xer = word(gpr0 + layout.xer)
        self._so = word(gpr0 + layout.so)
        self._ov = word(gpr0 + layout.ov)
        self._ca = word(gpr0 + layout.ca)

    def __call__(self) -> int:
        return self._xer.value | self._so.value << 31 | self._ov.value << 30 | self._ca.value << 29


def reader(
    uc: Uc, gprs: RegisterBank, width: int, write: WriteXer, read: ReadXer
) -> XerReader | None:
    """An :class:`XerReader` for this engine when it agrees with ``mfxer`` (``read``) on every
    value of :data:`_CHECKS` written by ``mtxer`` (``write``); else None. ``gprs`` reads and
    writes GPR0-31 (they are put back). XER is left as it was found."""
    initial = read()
    try:
        gpr0 = _gpr0(uc, gprs, width)
        if gpr0 is None:
            return None
        if width not in _layouts:
            try:
                _layouts[width] = _find(gpr0, write)
            except EngineError:
                _layouts[width] = None
        layout = _layouts[width]
        if layout is None:
            return None
        xer = XerReader(uc, gpr0, layout)
        for value in _CHECKS:
            write(value)
            if xer() != value or read() != value:
                return None
        return xer
    finally:
        write(initial)
