"""One vCPU's side of a debug session: the two calls its thread makes around every KVM_RUN.

A VMM keeps its own vCPU threads. Each calls its port before every ``KVM_RUN`` and with every
exit, and guestdbg answers::

    while True:
        port.before_run()                  # parks here while the debugger holds the VM
        reason = vcpu.run()                # KVM_RUN
        nxt = port.after_exit(reason)
        if nxt is Next.DEVICE and not device_model(reason):
            port.halt("the device model stopped the guest")

``before_run`` returns once the vCPU may run, with its ``kvm_guest_debug`` programmed and any
re-injection of the guest's own event delivered; while the debugger holds the VM stopped it
blocks (the vCPU is *parked*). ``after_exit`` judges a debug exit (report it to the debugger,
re-inject it into the guest, or drop a stale one) and returns :attr:`Next.DEVICE` for exits that
are the VMM's own (MMIO, I/O, HLT...); an exit the debugger's own trap word caused is never one
of them, whatever its reason (a kernel that fails to emulate ``int3`` exits with
KVM_EXIT_INTERNAL_ERROR): it is reported to the debugger as a HALT. To stop every vCPU, guestdbg
kicks the others through ``VcpuHandle.kick`` - the VMM's own signal - and each parks at its
next ``before_run``. When guestdbg runs the vCPU threads itself (:mod:`.threads`) they run
exactly this loop.

Everything a debug exit costs is in :meth:`VcpuPort.after_exit` and :meth:`VcpuPort.before_run`,
top to bottom: plain calls and dict look-ups (hooks were resolved when the session was built).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence

from ..arch import ArchVcpuDebug
from ..events import Reinject, Report, StopEvent, StopKind, StopReason
from ..filter import ReinjectionFilter
from ..kvm.constants import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_EXCEPTION,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_INTR,
    KVM_EXIT_MMIO,
    exit_name,
)
from ..points import DEFAULT_SPACE, DebugPoint, SwEntry
from ..vcpu import VcpuHandle
from .control import Command, RunControl, StepOver
from .debug_state import DebugState
from .hits import HitView, judge, points_at
from .traps import apply_guest_store
from .write_guard import TrapPageGuard

log = logging.getLogger(__name__)

_WATCH_STOPS = frozenset({StopKind.WATCH, StopKind.RWATCH, StopKind.AWATCH})
_BREAK_STOPS = (StopKind.SW_BREAK, StopKind.HW_BREAK)  # a tuple: Enum hashes in Python
_TRAP_WORD_EXITS = frozenset({KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_EXCEPTION})
"""Exits a trap word can end KVM_RUN with on a kernel that cannot report it as KVM_EXIT_DEBUG."""


class Next(enum.Enum):
    """What the vCPU thread does after an exit."""

    RUN = "run"
    """guestdbg dealt with the exit: call ``before_run`` and KVM_RUN again."""
    DEVICE = "device"
    """Not the debugger's exit: the VMM's device model handles it, then the loop goes on."""
    HANDOVER = "handover"
    """Only for guestdbg's own threads: an inline run goes on on the vCPU's thread."""


class _Phase(enum.Enum):
    PARKED = "parked"
    RUN = "run"
    STEP = "step"
    OVER = "over"
    """Stepping over the point under the PC, alone, the point out of the way."""
    PASS = "pass"
    """Stepping past a breakpoint whose condition was false, then back to what it was doing."""


_STEPPING_PAST = (_Phase.OVER, _Phase.PASS)
"""Phases that finish their one step even when the VM is being stopped: a trap word is out of
guest memory or a compare out of the registers until that step is done."""


class VcpuPort:
    """Run control and exit judgement for one vCPU, whichever thread drives it."""

    def __init__(
        self,
        index: int,
        handle: VcpuHandle,
        ops: ArchVcpuDebug,
        filt: ReinjectionFilter,
        state: DebugState,
        control: RunControl,
    ) -> None:
        self.index = index
        self.handle = handle
        self.ops = ops
        self.filter = filt
        self.state = state
        self.control = control
        self.step = False
        """Host single-step armed for what this vCPU does now."""
        self.masked: frozenset[DebugPoint] = frozenset()
        """Hardware points left out of this vCPU's registers while it steps over them."""
        self.origin: int | None = None
        """The PC a host step started from (a step that did not leave it trapped there)."""
        self.last_stop: StopReason | None = None
        """What this vCPU last posted (a before-access watch needs a step-over to go on)."""
        self.seen_at: int | None = None
        """The PC of this vCPU's last stop the debugger was told about, while it has not run
        since. Only a point the debugger has seen this vCPU stopped at is stepped over on the
        next resume; a vCPU whose queued hit was dropped (GDB removed its breakpoints at the
        stop and put them back) must hit the point again and be reported."""
        self.pending: Reinject | None = None
        """The guest's own event, decided but not yet delivered (plain, serializable state)."""
        self.exits = 0
        self.overdue = False
        """Set by the watchdog when an inline run went on too long."""
        self._applied: tuple[object, ...] | None = None
        self._after_guest_debug: Callable[[], None] | None = getattr(ops, "after_guest_debug", None)
        self._resume_past: Callable[[int], bool] | None = getattr(ops, "resume_past_hw_break", None)
        self._in_place: Callable[[int, Callable[[int, int], bytes]], bool] | None = getattr(
            ops, "execute_in_place", None
        )
        self._phase = _Phase.PARKED
        self._cmd: Command | None = None
        self._suspended = False
        self._passing: SwEntry | None = None
        """The trap word this vCPU took out to step past its false condition."""
        self._resume_to: tuple[_Phase, bool, int | None, frozenset[DebugPoint]] = (
            _Phase.RUN,
            False,
            None,
            frozenset(),
        )
        """Where a pass returns to: phase, step, origin, masked."""

    @property
    def inline(self) -> bool:
        """Driven by a caller's thread for now (guestdbg's inline runs), not the vCPU's own."""
        return self.control.inline[self.index]

    @inline.setter
    def inline(self, on: bool) -> None:
        self.control.inline[self.index] = on

    @property
    def phase(self) -> str:
        """What the vCPU is doing for the debugger: parked, run, step, over or pass."""
        return self._phase.value

    # -- the vCPU thread's calls ------------------------------------------------------------

    def before_run(self, inline: bool = False) -> bool:
        """Call before every KVM_RUN. Blocks while the vCPU is parked; returns True once it
        may run (debug state programmed, pending re-injection delivered). Returns False only to
        guestdbg's own threads: the session closed (``inline=False``) or an inline run is over
        (``inline=True``)."""
        c = self.control
        # guestdbg's own thread waits on a condition of its own (see RunControl.own)
        waits = c.cv if inline else c.own_cv(self.index)
        with c.cv:
            while True:
                cmd = c.commands[self.index]
                if cmd is not None and c.stop_all and self._phase not in _STEPPING_PAST:
                    self._park_locked()  # another vCPU stopped the VM
                    continue
                if c.holder is not None and c.holder != self.index:
                    c.wait_for_holder(waits)  # another vCPU steps past a trap word it took out
                    continue
                if cmd is not None and c.inline[self.index] == inline:
                    c.in_run.add(self.index)
                    break
                if inline or (c.closed and cmd is None):
                    return False
                waits.wait()
        if cmd is not self._cmd:
            self._take(cmd)
        try:
            self.sync_debug()
            self.deliver_pending()
        except Exception as e:
            c.left_run(self.index)
            self.fail(e)
            return self.before_run(inline)
        return True

    def after_exit(self, reason: int) -> Next:
        """Call with every KVM_RUN's exit reason (``kvm_run`` holds the rest)."""
        self.exits += 1
        self.control.left_run(self.index)
        if reason == KVM_EXIT_DEBUG:
            try:
                self._debug_exit()
            except Exception as e:
                self.fail(e)
            return Next.RUN
        if reason == KVM_EXIT_INTR:
            if self.overdue and self.inline:
                self.handover()
                return Next.HANDOVER
            return Next.RUN
        if reason == KVM_EXIT_MMIO:
            guard = self.state.guard
            if guard is not None and guard.active and self._guest_store(guard):
                return Next.RUN  # the guest rewrote code on a trap page: applied, runs on
            return Next.DEVICE
        if reason in _TRAP_WORD_EXITS and self.state.traps_active and self._own_trap(reason):
            return Next.RUN  # the debugger's trap word: never the device model's exit
        return Next.DEVICE

    def halt(self, why: str = "", fault: bool = False) -> None:
        """The VMM stops the guest (its device model cannot go on): a HALT stop, and this vCPU
        parks at its next ``before_run``. ``why`` is shown to the debugger; ``fault``: the vCPU
        could not go on as it is (see :attr:`StopReason.fault`)."""
        if why:
            log.info("vCPU %d halted: %s", self.index, why)
        self._stop(StopReason(StopKind.HALT, -1, why=why, fault=fault))

    def fail(self, e: Exception) -> None:
        """An ioctl failed on this vCPU: stop the VM and say why, rather than lose the thread."""
        log.exception("vCPU %d failed", self.index)
        self.state.stats.errors.append(str(e))
        self._stop(StopReason(StopKind.HALT, -1, why=f"vCPU {self.index} failed: {e}", fault=True))

    # -- the exit path ----------------------------------------------------------------------

    def _debug_exit(self) -> None:
        ev = self.ops.decode_exit(self.handle.kvm_run)
        verdict = self.filter.decide(ev, self.step, self.origin)
        kind = type(verdict)
        if kind is Report:
            stop: StopReason = verdict.reason  # type: ignore[union-attr]
            phase = self._phase
            if phase is _Phase.OVER:
                self._end_over()
                if stop.kind is StopKind.STEP and not self._cmd_step():
                    self.filter.stats.step_over_taken()  # the session's own step: not a stop
                    self._phase = _Phase.PARKED
                    self.control.over_done(self.index)
                    return
                if stop.kind is StopKind.STEP and self._steps_on(stop.pc):
                    self._phase = _Phase.PARKED  # the range goes on with the others
                    self.control.over_done(self.index)
                    return
            elif phase is _Phase.PASS:
                self._end_pass()
                if stop.kind is StopKind.STEP and self._phase is _Phase.RUN:
                    return  # past the point whose condition was false: run on
                if stop.kind is StopKind.STEP and self._steps_on(stop.pc):
                    self.origin = stop.pc  # past it, and the range step goes on
                    return
            elif stop.kind is StopKind.STEP and self._steps_on(stop.pc):
                self.origin = stop.pc  # range step: the next step, nobody woken
                return
            elif stop.kind in _BREAK_STOPS and not self._stops_here(stop.pc):
                self._pass(stop.pc)
                return
            self._stop(stop)
            return
        if kind is Reinject:
            self.pending = verdict  # type: ignore[assignment]
            if self.state.catch_guest_events:
                self._stop(StopReason(StopKind.GUEST_EVENT, ev.pc))

    def _stops_here(self, pc: int) -> bool:
        """Judge the conditions of the breakpoints at ``pc`` (see :mod:`.hits`)."""
        st = self.state
        return judge(points_at(st.points, pc), st.conditions, st.point_stats, self._view_at(pc))

    def _view_at(self, pc: int) -> Callable[[Sequence[DebugPoint]], HitView]:
        st = self.state

        def view(points: Sequence[DebugPoint]) -> HitView:
            return HitView(self.index, pc, points, self.handle, st.gdb_arch, st.read_view)

        return view

    def _pass(self, pc: int) -> None:
        """Step past the breakpoint at ``pc`` alone (its condition was false), then go back to
        what the vCPU was doing; no stop is posted and no other vCPU parks. A hardware
        breakpoint the arch can have the hardware run past (``resume_past_hw_break``) needs no
        step: the vCPU goes on as it was; nor does an instruction the arch can carry out itself
        (``execute_in_place``) while the vCPU runs freely."""
        pts = self.state.points
        trap = pts.trap_at(DEFAULT_SPACE, pc)
        hw = pts.hw_breaks.get((DEFAULT_SPACE, pc))
        if hw is not None and not hw.via_sw and (trap is None or not trap.inserted):
            resume_past = self._resume_past
            if resume_past is not None and resume_past(pc):
                return  # the hardware runs the instruction past its breakpoint: no step
        in_place = self._in_place
        if (
            in_place is not None
            and self._phase is _Phase.RUN
            and not self.step
            and self.pending is None
            and in_place(pc, self._fetch)
        ):
            st = self.state
            st.stats.executed_in_place += 1
            for p in points_at(pts, pc):
                counted = st.point_stats.get(p)
                if counted is not None:
                    counted.in_place += 1
            return  # the arch carried out the instruction: the point stays armed, no step
        self._resume_to = (self._phase, self.step, self.origin, self.masked)
        self._phase = _Phase.PASS
        self.step = True
        self.origin = pc
        if hw is not None and not hw.via_sw:
            self.masked = self.masked | {hw.point}
        if trap is not None and trap.inserted:
            self.control.hold(self.index)
            if self.state.trap_writer.suspend(trap):
                self._passing = trap
            else:
                self.control.release(self.index)

    def _fetch(self, addr: int, length: int) -> bytes:
        return self.state.read_view(self.handle, addr, length)

    def _end_pass(self) -> None:
        trap, self._passing = self._passing, None
        if trap is not None:
            self.state.trap_writer.rearm(trap)
            self.control.release(self.index)
        self._phase, self.step, self.origin, self.masked = self._resume_to

    def _guest_store(self, guard: TrapPageGuard) -> bool:
        """A KVM_EXIT_MMIO that is a guest store to a write-protected trap page: apply it
        (:func:`.traps.apply_guest_store`). Done under the run-control lock and never while
        another vCPU has a trap word out of memory for its step past it: that vCPU re-arms the
        word after its step, and must re-arm it over what this store wrote."""
        store = guard.store_at(self.handle.kvm_run)
        if store is None:
            return False
        gpa, data = store
        st = self.state
        c = self.control
        with c.lock:
            while c.holder is not None and c.holder != self.index:
                c.wait_for_holder(c.cv)
            rewritten = apply_guest_store(st.points, st.trap_writer.vm, gpa, data,
                                          st.trap_writer.insn)  # fmt: skip
        guard.stores += 1
        if rewritten:
            st.stats.trap_words_rewritten += rewritten
        return True

    def _own_trap(self, reason: int) -> bool:
        """An exit other than KVM_EXIT_DEBUG at a trap word the debugger inserted: a kernel
        that cannot report the trap instruction as a debug exit (kvm_pvm's emulator fails on
        int3 at CPL0). It is the debugger's, not the device model's: a HALT with the reason,
        and the vCPU parks. Capabilities normally refuse such breakpoints beforehand
        (docs/reference/this-machine-kvm.md); this is for hosts that could not be probed."""
        try:
            pc = self.ops.pc()
        except Exception as e:
            self.fail(e)
            return True
        trap = self.state.points.trap_at(DEFAULT_SPACE, pc)
        if trap is None or not trap.inserted:
            return False
        why = (
            f"KVM_RUN ended with {exit_name(reason)} at the debugger's breakpoint at {pc:#x}: "
            "this kernel does not report the trap word as a debug exit; delete it and use hbreak"
        )
        self._stop(StopReason(StopKind.HALT, pc, why=why, fault=True))
        return True

    def _cmd_step(self) -> bool:
        return self._cmd is not None and self._cmd.step

    def _steps_on(self, pc: int) -> bool:
        """A range step goes on from ``pc``: it is in the command's range and no host
        breakpoint is at it (range stepping stops at breakpoints, as gdbserver's does), unless
        every breakpoint there has a condition: the next step hits it and the condition says."""
        cmd = self._cmd
        r = cmd.range if cmd is not None else None
        if r is None or not r[0] <= pc < r[1]:
            return False
        pts = self.state.points
        key = (DEFAULT_SPACE, pc)
        if key not in pts.sw and key not in pts.hw_breaks:
            return True
        # a breakpoint whose condition decides is judged when the next step reaches it
        conditions = self.state.conditions
        return all(p in conditions for p in points_at(pts, pc))

    def _stop(self, stop: StopReason) -> None:
        if self._phase is _Phase.OVER:
            self._end_over()
        elif self._phase is _Phase.PASS:
            self._end_pass()
        self.last_stop = stop
        c = self.control
        with c.cv:
            c.post(StopEvent(self.index, stop))
            self._park_locked()

    # -- commands ---------------------------------------------------------------------------

    def _take(self, cmd: Command) -> None:
        """Start what a resume asked of this vCPU."""
        self._cmd = cmd
        self.seen_at = None
        over = cmd.over
        if over is not None:
            self._phase = _Phase.OVER
            self.step = True
            self.origin = over.pc
            self.masked = over.masked
            self._suspended = over.trap is not None and self.state.trap_writer.suspend(over.trap)
        elif cmd.step:
            self._phase = _Phase.STEP
            self.step = True
            self.origin = self.ops.pc()
        else:
            self._phase = _Phase.RUN
            self.step = False
            self.origin = None

    def _end_over(self) -> None:
        """The step-over's step is done: the point is back before anything else runs."""
        cmd = self._cmd
        if self._suspended and cmd is not None and cmd.over is not None:
            trap = cmd.over.trap
            assert trap is not None
            self.state.trap_writer.rearm(trap)
        self._suspended = False
        self.masked = frozenset()
        self._phase = _Phase.STEP if self._cmd_step() else _Phase.RUN

    def _park_locked(self) -> None:
        self._phase = _Phase.PARKED
        self._cmd = None
        self.step = False
        self.control.park(self.index)

    def handover(self) -> None:
        """An inline run goes on on guestdbg's vCPU thread (which waits for ``inline`` off)."""
        c = self.control
        with c.cv:
            self.inline = self.overdue = False
            c.cv.notify_all()
            if c.commands[self.index] is not None:  # a parked vCPU's thread has nothing to do
                c.wake_own(self.index)

    # -- debug state ------------------------------------------------------------------------

    def sync_debug(self) -> None:
        """Send KVM_SET_GUEST_DEBUG if the host's debug state changed since the last one.

        Costs one tuple compare when nothing changed, so a batch of point changes costs one
        ioctl per vCPU, applied where KVM requires it (this vCPU not in KVM_RUN)."""
        st = self.state
        pts = st.points
        key = (pts.hw_generation, st.traps_active, self.step, self.masked, st.attached)
        if key == self._applied:
            return
        if st.attached:
            hw = pts.hw_points()
            if self.masked:
                hw = [p for p in hw if p not in self.masked]
            dbg = self.ops.encode_guest_debug(hw, self.step, st.traps_active)
        else:
            dbg = self.ops.encode_guest_debug([], False, False)
        self._applied = key
        if dbg is None:
            return
        self.handle.set_guest_debug(dbg)
        if self._after_guest_debug is not None:
            self._after_guest_debug()
        st.stats.set_guest_debug_calls += 1

    def deliver_pending(self) -> None:
        if self.pending is not None:
            self.ops.inject(self.pending)
            self.pending = None
            self.state.stats.injected += 1

    def point_under_pc(self, watch_before_access: bool) -> StepOver | None:
        """What this vCPU would hit again before executing anything, if the debugger has
        already seen it stopped there: a trap word or an IAC at its PC, or (on arches whose
        watchpoints fire before the access) the watchpoint it just reported at this PC. A point
        the debugger was not told about is not stepped over: the vCPU hits it and it is
        reported."""
        if self.seen_at is None:
            return None
        pts = self.state.points
        last = self.last_stop
        watch_again = (
            watch_before_access
            and last is not None
            and last.kind in _WATCH_STOPS
            and last.address is not None
            and (DEFAULT_SPACE, last.address) in pts.watch_addrs
        )
        if not pts.sw and not pts.hw_breaks and not watch_again:
            return None
        pc = self.ops.pc()
        if pc != self.seen_at:
            return None
        masked: set[DebugPoint] = set()
        trap = pts.trap_at(DEFAULT_SPACE, pc)
        if trap is not None and not trap.inserted:
            trap = None
        hw = pts.hw_breaks.get((DEFAULT_SPACE, pc))
        if hw is not None and not hw.via_sw:
            masked.add(hw.point)
        if watch_again and last is not None and last.pc == pc and last.address is not None:
            masked.update(e.point for e in pts.watch_addrs[(DEFAULT_SPACE, last.address)])
        if trap is None and not masked:
            return None
        return StepOver(trap, frozenset(masked), pc)
