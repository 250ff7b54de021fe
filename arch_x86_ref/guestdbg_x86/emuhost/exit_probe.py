"""Undoing what Unicorn's probe of ``until - 1`` leaves in the CPU.

Every ``emu_start`` makes Unicorn translate the linear address just below its ``until`` argument
through the guest's page tables. The run loop passes a non-canonical ``until`` (it must never be
reached), so that walk fails as a page fault that is never delivered but still changes the CPU:
CR2 becomes ``until - 1``, and QEMU's exception-chaining state (``env->old_exception``) says a
#PF is being delivered - so the next #GP, #PF or divide error the guest raises is reported as a
double fault (vector 8), and the one after that as a triple fault (Unicorn stops without any
report). Found by the host-step-over-exception tests: a step over a faulting access went to the
guest's #DF handler, and every #PF handler read CR2 = 0xfffffffffffffffe.

The model never lets Unicorn deliver an event (it delivers through the IDT itself, :mod:`.idt`),
so a double fault reported by Unicorn is never the guest's: :meth:`ExitProbe.forget_chain` puts
``old_exception`` back to "none" so the instruction can be run again and report its own fault.
The run loop puts CR2 back after every slice (or sets the one a real #PF reported).
``old_exception`` has no register id; it is found in a saved context as the one 32-bit field
that reads -1 in the vCPU's context at creation and the spurious vector 8 now.
"""

from __future__ import annotations

import ctypes
import struct

from .uc import Uc

DOUBLE_FAULT = 8
_I32 = struct.Struct("<i")


class ExitProbe:
    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self._fresh = bytes(uc.context_save())
        self._offset: int | None = None

    def forget_chain(self) -> None:
        """After Unicorn reported a #DF: reset ``old_exception`` to -1 (no event in delivery)."""
        uc = self.uc
        ctx = uc.context_save()
        raw = bytearray(bytes(ctx))
        offset = self._offset if self._offset is not None else self._find(raw)
        _I32.pack_into(raw, offset, -1)
        ctypes.memmove(ctx.context, bytes(raw), len(raw))
        uc.context_restore(ctx)

    def _find(self, raw: bytearray) -> int:
        fresh = self._fresh
        found = [
            i
            for i in range(0, min(len(raw), len(fresh)) - 3, 4)
            if _I32.unpack_from(fresh, i)[0] == -1 and _I32.unpack_from(raw, i)[0] == DOUBLE_FAULT
        ]
        if len(found) != 1:
            raise RuntimeError(
                f"cannot find QEMU's old_exception in this Unicorn's context ({found})"
            )
        self._offset = found[0]
        return found[0]
