"""The VMM's own vCPU run loop, with guestdbg deciding each debug exit: shared by the examples.

This is the first way to embed guestdbg (docs/embedding.md): the VMM keeps its KVM_RUN loop and
device model, and hands guestdbg only what is guestdbg's - the ``KVM_EXIT_DEBUG`` exits - and
asks it for the ``kvm_guest_debug`` to program. Nothing here knows an arch: the arch plugin's
operations (found through the registry, as the VMM would find them) encode, decode and inject.

Per debug exit, top to bottom (the same path :class:`guestdbg.session.port.VcpuPort` takes):

1. ``ops.decode_exit(vcpu.kvm_run)`` -> a :class:`~guestdbg.events.DebugEvent` (what the
   hardware saw, not yet whose it is);
2. ``filter.decide(event, stepping, step_origin)`` -> exactly one verdict:

   * :class:`~guestdbg.events.Report`: the host debugger's event. Stop and tell the debugger.
   * :class:`~guestdbg.events.Reinject`: the guest's own event. ``ops.inject(verdict)`` before
     the next KVM_RUN, so the guest's handler runs as if no debugger were there.
   * :class:`~guestdbg.events.Resume`: nobody's (a stale match). Just run on.

Every other exit goes to the VMM's device model, which says whether the guest runs on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from guestdbg.arch import ArchVcpuDebug, VcpuDebugRequest
from guestdbg.errors import GuestDebugError
from guestdbg.events import DebugEvent, Reinject, Report, Resume, StopKind, StopReason, Verdict
from guestdbg.filter import ReinjectionFilter
from guestdbg.kvm.constants import EXIT_REASON_NAMES, KVM_EXIT_DEBUG, KVM_EXIT_INTR
from guestdbg.plugins import Registry
from guestdbg.points import DebugPoint, PointKind, PointTable
from guestdbg.vcpu import VcpuHandle, VmHandle

DeviceModel = Callable[[int, int, memoryview], bool]
"""``device(vcpu_index, exit_reason, kvm_run) -> keep running?``: the same signature a
:class:`guestdbg.session.Session` takes as ``exit_handler``, so one device model serves both
ways of embedding."""

RUN_TIMEOUT = 10.0
"""Seconds one KVM_RUN may take before the VMM kicks it (a hung guest fails, it does not hang)."""


class ExampleFailed(GuestDebugError):
    """The guest did not do what the example expects; the message says what differed."""


def exit_name(reason: int) -> str:
    return EXIT_REASON_NAMES.get(reason, f"exit {reason}")


def describe(ev: DebugEvent) -> str:
    where = f"@{ev.pc:#x}"
    if ev.address != ev.pc:
        where += f" address={ev.address:#x}"
    return f"event {ev.kind.value} {where}"


def describe_verdict(v: Verdict) -> str:
    if isinstance(v, Report):
        return f"Report {v.reason.kind.value}"
    if isinstance(v, Reinject):
        payload = " ".join(f"{k}={n:#x}" for k, n in v.payload.items())
        return f"Reinject {v.exception.space}:{v.exception.number} {payload}".rstrip()
    return "Resume"


@dataclass
class TrapWord:
    """A software breakpoint the VMM put in guest memory: where, and the word it replaced."""

    point: DebugPoint
    gpa: int
    original: bytes


@dataclass
class OwnRunLoop:
    """One vCPU under the VMM's own loop, guestdbg's filter judging its debug exits."""

    registry: Registry
    arch: str
    vm: VmHandle
    vcpu: VcpuHandle
    device: DeviceModel
    log: Callable[[str], None] = print
    ops: ArchVcpuDebug = field(init=False)
    points: PointTable = field(init=False)
    filter: ReinjectionFilter = field(init=False)
    traps: dict[int, TrapWord] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        # Resolved once, when the VMM sets the vCPU up; the exit path below is plain calls.
        arch, core = self.registry.resolve(self.arch)
        self.ops = self.registry.vcpu_debug(VcpuDebugRequest(arch, core, self.vm, self.vcpu))
        self.points = PointTable(self.ops.caps)
        self.filter = ReinjectionFilter(self.points, self.ops.guest_verdict)
        self._after_guest_debug = getattr(self.ops, "after_guest_debug", None)

    # -- what the debugger asks for ------------------------------------------------------------

    def insert(self, point: DebugPoint) -> None:
        """Record a point; a software breakpoint also gets its trap word in guest memory."""
        if point.kind is not PointKind.SW_BREAK:
            self.points.insert(point)  # NoFreeSlot/UnsupportedByArch: nothing recorded
            return
        gpa = self.vcpu.translate(point.addr)
        if gpa is None:
            raise ExampleFailed(f"{point.addr:#x} is not mapped in the guest")
        insn = self.ops.sw_break_insn  # from the kernel (ppc: KVM_REG_PPC_DEBUG_INST)
        original = self.vm.read_phys(gpa, len(insn))
        self.points.insert(point)
        self.vm.write_phys(gpa, insn)
        self.traps[point.addr] = TrapWord(point, gpa, original)

    def remove(self, point: DebugPoint) -> None:
        self.points.remove(point)
        trap = self.traps.pop(point.addr, None) if point.kind is PointKind.SW_BREAK else None
        if trap is not None:
            self.vm.write_phys(trap.gpa, trap.original)

    # -- running -------------------------------------------------------------------------------

    def program(self, step: bool, masked: Iterable[DebugPoint] = ()) -> None:
        """KVM_SET_GUEST_DEBUG for the current points (minus ``masked``) and step flag."""
        leave_out = set(masked)
        hw = [p for p in self.points.hw_points() if p not in leave_out]
        dbg = self.ops.encode_guest_debug(hw, step, sw_breaks=bool(self.points.sw))
        if dbg is None:
            return  # the arch asks for no KVM_SET_GUEST_DEBUG at all (a guest-priority policy)
        self.vcpu.set_guest_debug(dbg)
        if self._after_guest_debug is not None:
            self._after_guest_debug()  # BookE: MSR[DE] is forced only at the next MSR write

    def release(self) -> None:
        """Hand the vCPU back without guest debugging: traps out of memory, debug state off."""
        for trap in list(self.traps.values()):
            self.remove(trap.point)
        self.points.clear()
        self.program(step=False)

    def run(
        self, step: bool = False, masked: Iterable[DebugPoint] = (), own_step: bool = False
    ) -> StopReason | None:
        """Run (or single-step) until the debugger must hear of something; None when the
        device model stopped the guest instead. ``own_step``: the step is the VMM's own (a
        step over a point before continuing), so its Report is not the debugger's news."""
        self.program(step, masked)
        origin = self.ops.pc() if step else None
        while True:
            reason = self._kvm_run()
            if reason != KVM_EXIT_DEBUG:
                if self.device(self.vcpu.vcpu_id, reason, self.vcpu.kvm_run):
                    continue
                return None
            ev = self.ops.decode_exit(self.vcpu.kvm_run)
            verdict = self.filter.decide(ev, step, origin)
            head = f"  {exit_name(reason):<15} {describe(ev)}  -> {describe_verdict(verdict)}"
            if isinstance(verdict, Report):
                if own_step and verdict.reason.kind is StopKind.STEP:
                    self.log(f"{head}  -> the VMM's own step over the point; not reported")
                else:
                    self.log(f"{head}  -> VMM stops the guest, tells the debugger")
                return verdict.reason
            if isinstance(verdict, Reinject):
                self.ops.inject(verdict)  # delivered before the next KVM_RUN
                self.log(f"{head}  -> VMM: ops.inject(), run on (the guest's handler runs)")
            elif isinstance(verdict, Resume):
                self.log(f"{head}  -> VMM runs on ({verdict.why})")

    def step_over(self, point: DebugPoint, for_debugger: bool = True) -> StopReason | None:
        """Execute the instruction a host point stops at: the trap word (or the debug register)
        out of the way for one step, then back. Kernels are not asked to honour x86 RF (kvm_pvm
        does not) or BookE's "skip one": the point is simply not armed for that step."""
        trap = self.traps.get(point.addr) if point.kind is PointKind.SW_BREAK else None
        if trap is not None:
            self.vm.write_phys(trap.gpa, trap.original)
        try:
            masked = () if trap is not None else (point,)
            return self.run(step=True, masked=masked, own_step=not for_debugger)
        finally:
            if trap is not None:
                self.vm.write_phys(trap.gpa, self.ops.sw_break_insn)

    def _kvm_run(self) -> int:
        """KVM_RUN, kicked from a timer thread if it has not returned in RUN_TIMEOUT: a kick is
        the one call another thread may make on a vCPU (the VMM's SIG_IPI)."""
        timer = threading.Timer(RUN_TIMEOUT, self.vcpu.kick)
        timer.daemon = True
        timer.start()
        try:
            reason = self.vcpu.run()
        finally:
            timer.cancel()
        if reason == KVM_EXIT_INTR:
            raise ExampleFailed(f"the guest did not leave KVM_RUN within {RUN_TIMEOUT:.0f} s")
        return reason
