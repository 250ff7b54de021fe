"""Toy debug operations bound to one vCPU: program, decode, judge, re-inject.

What the toy kernel does (:mod:`guestdbg_toyarch.kvm_run`) decides each step:

* The kernel reports how many compare slots it has (``KVM_CAP_GUEST_DEBUG_HW_BPS/WPS``) and the
  word it traps on (``KVM_REG_TOY_DEBUG_INST``); both are read here, never assumed.
* A ``trap`` exit carries the trap's immediate. Only the breakpoint word (the one the kernel
  reports) is a software-breakpoint trap the host may claim; any other ``trap n`` is the
  guest's own whatever the address, so it is decoded as OTHER and never mistaken for the host's
  breakpoint - not even while the session steps over its breakpoint at that very address, with
  the guest's ``trap n`` put back (a SW_TRAP there would be claimed again, for ever). Unclaimed,
  a trap goes back as the trap exception (the kernel returns past it: it is soft).
* A STEP exit the host did not ask for is the guest's own sr.SS step: re-inject the debug
  exception. An unclaimed BPn/WP hit cannot be the guest's (it has no compares of its own):
  it is a slot whose host point is gone, and is dropped.
* Injection goes through the kernel's priority numbers, converted with the arch's table.

Ownership: host-priority only; the toy guest has no debug registers to save or give back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from guestdbg.arch import OwnershipPolicy, VcpuDebugRequest
from guestdbg.errors import NoFreeSlot, UnsupportedByArch
from guestdbg.events import DebugEvent, EventKind, Reinject, Resume
from guestdbg.kvm.constants import (
    KVM_CAP_GUEST_DEBUG_HW_BPS,
    KVM_CAP_GUEST_DEBUG_HW_WPS,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg.points import DebugPoint, PointKind

from . import abi
from .numbering import DEBUG_ID, PRIO, TABLE, TRAP, TRAP_ID

_WP_TYPE = {
    PointKind.WATCH_READ: abi.TOY_WP_READ,
    PointKind.WATCH_WRITE: abi.TOY_WP_WRITE,
    PointKind.WATCH_ACCESS: abi.TOY_WP_READ | abi.TOY_WP_WRITE,
}
_GD = "struct kvm_guest_debug"
_EXIT = ("struct kvm_run", "debug", "arch")


class ToyVcpuDebug:
    """``ArchVcpuDebug`` for the toy arch."""

    def __init__(self, request: VcpuDebugRequest) -> None:
        if request.policy != OwnershipPolicy.HOST_PRIORITY:
            raise UnsupportedByArch(
                f"the toy arch has only {OwnershipPolicy.HOST_PRIORITY}; not {request.policy!r}"
            )
        self.vcpu = request.vcpu
        static = request.core.caps
        bps = min(static.hw_breakpoints, request.vm.check_extension(KVM_CAP_GUEST_DEBUG_HW_BPS))
        wps = min(static.hw_watchpoints, request.vm.check_extension(KVM_CAP_GUEST_DEBUG_HW_WPS))
        self.caps = dataclasses.replace(
            static,
            hw_breakpoints=bps,
            hw_watchpoints=wps,
            watch_kinds=static.watch_kinds if wps else frozenset(),
        )
        word = self.vcpu.get_one_reg(abi.KVM_REG_TOY_DEBUG_INST)
        self.sw_break_insn = word.to_bytes(static.sw_break_size, "big")
        self._break_imm = word & 0xFFFF
        lay = request.vm.layout
        self._size = lay.sizeof(_GD)
        self._control = lay.field(_GD, "control")
        self._bp_addr = [lay.field(_GD, "arch", "bp_addr", n) for n in range(bps)]
        self._bp_enable = lay.field(_GD, "arch", "bp_enable")
        self._wp_addr = lay.field(_GD, "arch", "wp_addr")
        self._wp_type = lay.field(_GD, "arch", "wp_type")
        self._exception = lay.field(*_EXIT, "exception")
        self._status = lay.field(*_EXIT, "status")
        self._pc = lay.field(*_EXIT, "pc")
        self._addr = lay.field(*_EXIT, "addr")
        self._reg_pc = lay.field("struct kvm_regs", "pc")

    def encode_guest_debug(
        self, hw_points: Sequence[DebugPoint], step: bool, sw_breaks: bool
    ) -> bytes:
        breaks = [p for p in hw_points if p.kind is PointKind.HW_BREAK]
        watches = [p for p in hw_points if p.kind.is_watch]
        if len(breaks) > len(self._bp_addr) or len(watches) > self.caps.hw_watchpoints:
            raise NoFreeSlot(f"{len(breaks)} breakpoints and {len(watches)} watchpoints")
        control = 0
        if sw_breaks:
            control |= KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP
        if step:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
        buf = bytearray(self._size)
        if hw_points:
            control |= KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
            for n, p in enumerate(breaks):
                self._bp_addr[n].put(buf, p.addr)
            self._bp_enable.put(buf, (1 << len(breaks)) - 1)
            for w in watches:
                self._wp_addr.put(buf, w.addr)
                self._wp_type.put(buf, _WP_TYPE[w.kind])
        self._control.put(buf, control)
        return bytes(buf)

    def decode_exit(self, run: memoryview) -> DebugEvent:
        exception = self._exception.get(run)
        status = self._status.get(run)
        pc = self._pc.get(run)
        arch = (exception, status)
        if exception == TRAP:
            kind = EventKind.SW_TRAP if status == self._break_imm else EventKind.OTHER
            return DebugEvent(kind, pc, pc, arch=arch)
        if status & (abi.TOY_DBG_BP0 | abi.TOY_DBG_BP1):
            return DebugEvent(EventKind.HW_BREAK, pc, self._addr.get(run), arch=arch)
        if status & abi.TOY_DBG_WP:
            write = status & abi.TOY_DBG_WP_WRITE
            access = PointKind.WATCH_WRITE if write else PointKind.WATCH_READ
            return DebugEvent(EventKind.WATCH, pc, self._addr.get(run), access, arch=arch)
        if status & abi.TOY_DBG_STEP:
            return DebugEvent(EventKind.STEP, pc, pc, arch=arch)
        return DebugEvent(EventKind.OTHER, pc, pc, arch=arch)

    def guest_verdict(self, ev: DebugEvent) -> Reinject | Resume:
        if ev.arch[0] == TRAP:
            return Reinject(TRAP_ID, ev.pc)
        if ev.kind is EventKind.STEP:
            return Reinject(DEBUG_ID, ev.pc)
        return Resume(
            f"{ev.kind.value} at {ev.address:#x} matches no host point and the toy guest has "
            "no compares of its own: a slot whose point is gone"
        )

    def inject(self, r: Reinject) -> None:
        prio = TABLE.convert(r.exception, PRIO)  # NoMapping: the kernel cannot queue it
        self.vcpu.set_one_reg(abi.KVM_REG_TOY_QUEUE_PRIO, prio.number)

    def pc(self) -> int:
        return self._reg_pc.get(self.vcpu.get_regs())

    def attach(self) -> Mapping[str, int]:
        return {}

    def detach(self, saved: Mapping[str, int]) -> None:
        return None
