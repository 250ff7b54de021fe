"""One vCPU's run loop: the per-exit hot path of a debug session.

Everything a debug exit costs is in :meth:`Runner._run`, top to bottom: apply the debug state if
it changed, deliver a pending reinjection, KVM_RUN, decode, decide, then report, reinject or
resume. Hooks were resolved when the session was built; here there are only plain calls.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from ..arch import ArchVcpuDebug
from ..events import Reinject, Report, StopKind, StopReason
from ..filter import ReinjectionFilter
from ..gdb.target import StopEvent
from ..kvm.constants import KVM_EXIT_DEBUG, KVM_EXIT_INTR
from ..points import DebugPoint, SwEntry
from ..vcpu import VcpuHandle

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

RUN, STEP, STEP_OVER, QUIT = "run", "step", "step-over", "quit"

StepOver = tuple["SwEntry | None", frozenset[DebugPoint], int]
"""What a vCPU must step over before it can go on: the trap word under its PC (put back for
one step), the hardware points left out of its own registers for that step (an IAC at the PC;
a DAC that fires before the access it watches), and the PC."""


class _Overdue(Exception):
    """An inline run went on longer than the watchdog allows: it moves to the vCPU thread.
    ``over`` is the step-over still to do (None once it is done)."""

    over: StepOver | None = None


class Watchdog:
    """Kicks a vCPU that runs inline (on the caller's thread) for longer than ``limit``
    seconds.

    It polls (every ``period``) instead of being woken for each run: a wake-up per run made
    the woken thread contend for the GIL with the run itself and cost more than the thread
    hand-off the inline run saves. The polling thread exists only while inline runs are being
    made and ends after a second without one."""

    def __init__(self, limit: float = 0.05, period: float = 0.02) -> None:
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._armed: tuple[Runner, float] | None = None
        self._thread: threading.Thread | None = None

    def arm(self, runner: Runner) -> None:
        with self._lock:
            self._armed = (runner, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="guestdbg-watchdog", daemon=True
                )
                self._thread.start()

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self.period)
            now = time.monotonic()
            with self._lock:
                armed = self._armed
                if armed is None:
                    if now - idle_since > 1.0:
                        self._thread = None
                        return
                    continue
                idle_since = now
                runner, since = armed
                if now - since > self.limit:
                    runner.overdue = True
                    runner.handle.kick()
                    self._armed = None


class Runner:
    """Drives one vCPU on its own thread, one command (run / step / step-over) at a time."""

    def __init__(
        self,
        session: Session,
        index: int,
        handle: VcpuHandle,
        ops: ArchVcpuDebug,
        filt: ReinjectionFilter,
    ) -> None:
        self.session = session
        self.index = index
        self.handle = handle
        self.ops = ops
        self.filter = filt
        self.step = False
        """Host single-step armed for the current command."""
        self.masked: frozenset[DebugPoint] = frozenset()
        """Hardware points left out of this vCPU's registers while it steps over them."""
        self.last_stop: StopReason | None = None
        """What this vCPU last posted (a before-access watch needs a step-over to go on)."""
        self.seen_at: int | None = None
        """The PC of this vCPU's last stop the debugger was told about, while it has not run
        since. Only a point the debugger has seen this vCPU stopped at is stepped over on the
        next resume; a vCPU whose queued hit was dropped (GDB removed its breakpoints at the
        stop and put them back) must hit the point again and be reported."""
        self.pending: Reinject | None = None
        """The guest's own event, decided but not yet delivered (plain, serializable state)."""
        self.applied: tuple[object, ...] | None = None
        self.exits = 0
        self._after_guest_debug = getattr(ops, "after_guest_debug", None)
        self.overdue = False
        """Set by the watchdog when an inline run went on too long (see ``run_inline``)."""
        self.inline = False
        """Running on the caller's thread (``run_inline``), not on this vCPU's own."""
        self._commands: queue.SimpleQueue[tuple[str, StepOver | None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- control (session side) -------------------------------------------------------------

    def start(self, command: str, over: StepOver | None = None) -> None:
        """Queue a command; with ``over``, first step over the host point under the PC (this
        vCPU alone), then tell the session (which starts the other vCPUs) and go on."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._main, name=f"guestdbg-vcpu{self.index}", daemon=True
            )
            self._thread.start()
        self.seen_at = None
        self._commands.put((command, over))

    def quit(self) -> None:
        if self._thread is not None:
            self._commands.put((QUIT, None))
            self._thread.join(timeout=5)
            self._thread = None

    def sync_debug(self) -> None:
        """Send KVM_SET_GUEST_DEBUG if the host's debug state changed since the last one.

        Called before every KVM_RUN; costs one tuple compare when nothing changed, so a batch of
        point changes costs one ioctl per vCPU, applied where KVM requires it (vCPU not running).
        """
        s = self.session
        pts = s.points
        key = (pts.hw_generation, s.traps_active, self.step, self.masked, s.attached)
        if key == self.applied:
            return
        if s.attached:
            hw = pts.hw_points()
            if self.masked:
                hw = [p for p in hw if p not in self.masked]
            dbg = self.ops.encode_guest_debug(hw, self.step, s.traps_active)
        else:
            dbg = self.ops.encode_guest_debug([], False, False)
        self.applied = key
        if dbg is None:
            return
        self.handle.set_guest_debug(dbg)
        if self._after_guest_debug is not None:
            self._after_guest_debug()
        s.stats.set_guest_debug_calls += 1

    def deliver_pending(self) -> None:
        if self.pending is not None:
            self.ops.inject(self.pending)
            self.pending = None
            self.session.stats.injected += 1

    # -- the vCPU thread --------------------------------------------------------------------

    def _main(self) -> None:
        while True:
            command, over = self._commands.get()
            if command == QUIT:
                return
            try:
                self._execute(command, over)
            except Exception as e:  # a failed ioctl must stop the VM, not kill the thread
                self._failed(e)
            finally:
                self.session.runner_done(self.index)

    def _failed(self, e: Exception) -> None:
        log.exception("vCPU %d failed", self.index)
        self.session.post(StopEvent(self.index, StopReason(StopKind.HALT, -1)), error=str(e))

    def run_inline(self, command: str, over: StepOver | None, watchdog: Watchdog) -> None:
        """Run a command on the caller's thread (the only vCPU resumed): most runs end within
        microseconds (a step, a hit on the next breakpoint), and handing them to the vCPU
        thread and back costs two thread wake-ups (about 50 us here). A run still going when
        the watchdog's limit passes - a guest that sleeps in the kernel, or simply runs on -
        is kicked and goes on on the vCPU's own thread, so the caller (the GDB server thread,
        which must see a Ctrl-C) is held up for that long at most."""
        self.seen_at = None
        self.overdue = False
        self.inline = True
        watchdog.arm(self)
        handed_over = False
        try:
            self._execute(command, over)
        except _Overdue as late:
            watchdog.disarm()
            self.inline = self.overdue = False
            handed_over = True
            self.start(command, late.over)  # the vCPU thread calls runner_done
        except Exception as e:
            self._failed(e)
        finally:
            watchdog.disarm()
            self.inline = False
            if not handed_over:
                self.session.runner_done(self.index)

    def _execute(self, command: str, over: StepOver | None) -> None:
        """Step over what is under the PC if asked, then run the command (a STEP command is
        the step-over itself)."""
        if over is not None:
            try:
                go_on = self._step_over(over, report=command == STEP)
            except _Overdue as late:
                late.over = over  # not done: the vCPU thread does it again
                raise
            if not go_on or command in (STEP, STEP_OVER):
                return
        self._run(command)

    def _step_over(self, over: StepOver, report: bool) -> bool:
        """Execute the instruction under a host point: trap word put back (or the IAC left out
        of this vCPU's registers) for one step while every other vCPU is still parked. Returns
        True when the caller should go on with its command; False when a stop was posted."""
        s = self.session
        trap, masked, pc = over
        suspended = trap is not None and s.trap_writer.suspend(trap)
        self.masked = masked
        try:
            posted = self._run(STEP if report else STEP_OVER, origin=pc)
        finally:
            if suspended and trap is not None:
                s.trap_writer.rearm(trap)
            self.masked = frozenset()
        if posted or report:
            return False
        return s.step_over_done(self.index)

    def _run(self, command: str, origin: int | None = None) -> bool:
        """Run until a stop; True when this vCPU posted one. ``origin``: the PC a step starts
        from, when the caller knows it (else it is read for steps)."""
        s = self.session
        handle = self.handle
        ops = self.ops
        decide = self.filter.decide
        alone = command == STEP_OVER
        self.step = command != RUN
        if self.step and origin is None:
            origin = ops.pc()
        try:
            while True:
                if s.stop_all and not alone:
                    return False
                self.sync_debug()
                if self.pending is not None:
                    self.deliver_pending()
                reason = handle.run()
                self.exits += 1
                if reason == KVM_EXIT_DEBUG:
                    ev = ops.decode_exit(handle.kvm_run)
                    verdict = decide(ev, self.step, origin)
                    kind = type(verdict)
                    if kind is Report:
                        stop = verdict.reason  # type: ignore[union-attr]
                        if alone and stop.kind is StopKind.STEP:
                            self.filter.stats.step_over_taken()
                            return False
                        self.last_stop = stop
                        s.post(StopEvent(self.index, stop))
                        return True
                    if kind is Reinject:
                        self.pending = verdict  # type: ignore[assignment]
                        if s.catch_guest_events:
                            s.post(StopEvent(self.index, StopReason(StopKind.GUEST_EVENT, ev.pc)))
                            return True
                    continue
                if reason == KVM_EXIT_INTR:
                    if self.overdue and self.inline:
                        raise _Overdue
                    continue
                if not s.vmm_exit(self.index, reason):
                    s.post(StopEvent(self.index, StopReason(StopKind.HALT, -1)))
                    return True
        finally:
            self.step = False
