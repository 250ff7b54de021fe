"""All-stop run control across one VM's vCPUs: who may run, the stops waiting to be reported,
and the order in which vCPUs step over the points under their PCs.

GDB's all-stop mode, as KVM VMMs implement it (QEMU's ``vm_stop``, bhyve's per-vCPU events):

* A reported stop stops every vCPU: the reporting vCPU posts it and every other running vCPU is
  kicked out of KVM_RUN (the VMM's own kick: a signal on ``/dev/kvm``). Events that other vCPUs
  hit before they notice are queued, not lost, and reported one per resume; a queued breakpoint
  stop whose point was removed meanwhile is dropped (that vCPU never executed the trapped
  instruction, so resuming it simply runs into the point again, or not). A stepping vCPU's stop
  is reported before the others, and a step's end left queued is dropped at the next resume
  (docs/reference/peers.md §10).
* A resume names the vCPUs to run; the others stay parked.
* vCPUs that must step over a host point under their PC do so one at a time, each alone, before
  any resumed vCPU runs on: nobody runs past a trap word put back for another's step-over.

A vCPU runs while it holds a :class:`Command` and parks (in its port's ``before_run``) while it
holds none. Everything here is guarded by one condition variable, on which parked vCPU threads
wait; it is reentrant so a callback run while a vCPU parks may take it again.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import NotStopped
from ..events import ResumeAction, StopEvent, StopKind, StopReason
from ..points import DEFAULT_SPACE, DebugPoint, PointTable, SwEntry

_WATCH_STOPS = (StopKind.WATCH, StopKind.RWATCH, StopKind.AWATCH)


@dataclass(frozen=True, slots=True)
class StepOver:
    """What a vCPU must step over before it can go on from its PC."""

    trap: SwEntry | None
    """The trap word under the PC, put back to the original word for one step."""
    masked: frozenset[DebugPoint]
    """Hardware points left out of this vCPU's registers for that step: an IAC at the PC, a
    DAC that fires before the access it watches."""
    pc: int


@dataclass(frozen=True, slots=True)
class Command:
    """What a resume asked one vCPU to do."""

    step: bool = False
    """Stop after one instruction (else run until something stops the VM)."""
    over: StepOver | None = None
    """Step over this point first, alone. With ``step`` the step-over is the step."""
    range: tuple[int, int] | None = None
    """With ``step``: keep stepping while the PC stays in ``[start, end)`` and no host
    breakpoint is at it (:class:`~guestdbg.events.ResumeAction`). The vCPU's own thread loops
    (:mod:`.port`); a range step that starts with a step-over goes on, once that step lands in
    the range, as a resumed vCPU does after the step-overs (``over_done``)."""


RUN = Command()


class RunControl:
    def __init__(self, vcpus: int, kick: Callable[[int], None]) -> None:
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.own: dict[int, threading.Condition] = {}
        """Per vCPU driven by guestdbg's own thread: the condition that thread parks on (same
        lock as :attr:`cv`). It is notified when the vCPU is given a command while no caller
        drives it inline, when it is handed over, when a holder releases, and on close."""
        self.inline = [False] * vcpus
        """Per vCPU: driven by a caller's thread for now (``VcpuPort.inline``)."""
        self.kick = kick
        """``kick(index)``: get that vCPU out of KVM_RUN (``VcpuHandle.kick``)."""
        self.commands: list[Command | None] = [None] * vcpus
        self.running: set[int] = set()
        """vCPUs not parked: holding a command, or on their way to park."""
        self.stops: collections.deque[StopEvent] = collections.deque()
        self.stop_all = False
        """A stop was posted or asked for: every vCPU parks at its next chance."""
        self.closed = False
        """The session is closed: guestdbg's own vCPU threads end."""
        self.resumed: set[int] = set(range(vcpus))
        """The vCPUs the last resume named: only their stops (and an interrupt) are reported
        now; another vCPU's queued stop waits until that vCPU is resumed (gdbserver keeps such
        a status pending the same way: GDB, stepping one thread, dies on another's stop)."""
        self.stepping: set[int] = set()
        """The vCPUs the last resume asked to step: when several stops are queued, one of
        theirs is reported first (see :meth:`wait_stop`)."""
        self._queue: list[tuple[int, Command]] = []
        """Step-overs still to do after the current one, in order."""
        self._after: dict[int, Command] = {}
        """What each resumed vCPU does once every step-over is done."""
        self.in_run: set[int] = set()
        """vCPUs between their port's ``before_run`` returning and its ``after_exit``: in
        KVM_RUN or about to enter it."""
        self.holder: int | None = None
        """A vCPU stepping over a trap word it took out of memory on its own (a breakpoint
        whose condition was false): no other vCPU enters KVM_RUN until it is back."""
        self.holder_waiters = 0
        """Threads waiting for the holder to be back (:meth:`wait_for_holder`): a release with
        none wakes nobody. A false condition's pass holds and releases once per hit, and waking
        every waiter of :attr:`cv` each time (the debugger's ``wait_stop`` among them) cost
        more than the rest of the pass's bookkeeping."""
        self.on_park: Callable[[int], None] | None = None
        """Called (lock held) when a vCPU parks, before it counts as stopped (planted steps
        turn their hit into the step here)."""
        self.history: collections.deque[tuple[float, str, object]] | None = None
        """With :meth:`keep_history`: ``(time.monotonic(), what, detail)`` for the last
        resumes, posted stops, reported stops, interrupts and dropped stops (to explain a
        failure after the fact); None, the default, records nothing."""

    def keep_history(self, entries: int) -> None:
        """Record the last ``entries`` run-control events in :attr:`history` (0: stop)."""
        with self.lock:
            self.history = collections.deque(maxlen=entries) if entries > 0 else None

    def note(self, what: str, detail: object) -> None:
        """Record an event in :attr:`history` (lock held; callers check it is not None)."""
        assert self.history is not None
        self.history.append((time.monotonic(), what, detail))

    # -- giving and taking commands ---------------------------------------------------------

    def resume(self, actions: Mapping[int, ResumeAction], overs: Mapping[int, StepOver]) -> None:
        """Run the named vCPUs: first each one with a point under its PC steps over it, one at
        a time, alone; then every resumed vCPU goes on (a step-over that was the step asked for
        is reported and ends the resume; one that began a range step still in its range goes on
        with the others)."""
        with self.lock:
            if self.history is not None:
                self.note("resume", (dict(actions), dict(overs)))
            self.stop_all = False
            self.resumed = set(actions)
            self.stepping = {i for i, a in actions.items() if a.step}
            self._queue, self._after = [], {}
            queue = [
                (i, Command(actions[i].step, overs[i], actions[i].range))
                for i in sorted(actions)
                if i in overs
            ]
            after = {
                i: Command(a.step, range=a.range)
                for i, a in actions.items()
                if not (i in overs and a.step and a.range is None)
            }
            if not queue:
                for i, cmd in after.items():
                    self.give(i, cmd)
                return
            (first, cmd), self._queue = queue[0], queue[1:]
            self._after = after
            self.give(first, cmd)

    def give(self, index: int, cmd: Command) -> None:
        with self.lock:
            self.commands[index] = cmd
            self.running.add(index)
            self.cv.notify_all()
            if not self.inline[index]:
                self.wake_own(index)

    def own_cv(self, index: int) -> threading.Condition:
        """What ``index``'s thread waits on outside an inline run: its own condition if
        guestdbg runs it, else :attr:`cv`."""
        return self.own.get(index, self.cv)

    def wake_own(self, index: int) -> None:
        """Wake guestdbg's own thread of ``index`` (lock held), if it has one."""
        own = self.own.get(index)
        if own is not None:
            own.notify_all()

    def _wake_all_own(self) -> None:
        for own in self.own.values():
            own.notify_all()

    def over_done(self, index: int) -> None:
        """``index`` stepped over its point and its trap word is back: the next step-over, or
        once they are all done every resumed vCPU (``index`` too) goes on."""
        with self.lock:
            if self.stop_all or self.stops:
                self.park(index)
                return
            if self._queue:
                self.park(index)  # its turn to run comes with everyone else's
                nxt, cmd = self._queue.pop(0)
                self.give(nxt, cmd)
                return
            after, self._after = self._after, {}
            if index not in after:
                self.park(index)
            for i, cmd in after.items():
                self.give(i, cmd)

    def park(self, index: int) -> None:
        """The vCPU stopped running (its thread waits for a command)."""
        with self.lock:
            self.commands[index] = None
            if index in self.running:
                self.running.discard(index)
                if self.on_park is not None:
                    self.on_park(index)  # may give it (and others) a command again
            self.cv.notify_all()

    # -- stopping ---------------------------------------------------------------------------

    def post(self, ev: StopEvent) -> None:
        """A vCPU's stop to report: every other running vCPU is stopped."""
        with self.lock:
            if self.history is not None:
                self.note("post", ev)
            self.stops.append(ev)
            if not self.stop_all:
                self._halt_all_locked(but=ev.vcpu)
            self.cv.notify_all()

    def interrupt(self) -> None:
        """Stop every vCPU; the next ``wait_stop`` reports it (unless an event got there first)."""
        with self.lock:
            if self.history is not None:
                self.note("interrupt", (sorted(self.running), list(self.stops)))
            if not self.stops:
                who = min(self.running) if self.running else 0
                self.stops.append(StopEvent(who, StopReason(StopKind.INTERRUPT, -1)))
            self._halt_all_locked()
            self.cv.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        """Stop everything and wait until every vCPU parked; queued stops are discarded.
        Raises NotStopped, and lets the vCPUs run on, if some did not park within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            if self.history is not None:
                self.note("stop", (sorted(self.running), list(self.stops)))
            if not self.running:
                self.stops.clear()
                return
            self._halt_all_locked()
            while self.running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    late = sorted(self.running)
                    self.release_all()
                    raise NotStopped(
                        f"vCPU(s) {late} did not stop within {timeout} s: a VMM's vCPU thread "
                        "must call its port's after_exit() and before_run() around every "
                        "KVM_RUN, and its kick must get it out of KVM_RUN"
                    )
                self.cv.wait(left)
            self.stops.clear()

    def _halt_all_locked(self, but: int | None = None) -> None:
        self.stop_all = True
        self._queue, self._after = [], {}
        for i in self.running:
            if i != but:
                self.kick(i)

    def release_all(self) -> None:
        """Every vCPU runs on, nobody debugging it (detach; a refused attach)."""
        with self.lock:
            if self.history is not None:
                self.note("release_all", list(self.stops))
            self.stop_all = False
            self.stops.clear()
            self.resumed = set(range(len(self.commands)))
            self.stepping = set()
            for i in range(len(self.commands)):
                self.give(i, RUN)

    # -- one vCPU alone, without a stop ----------------------------------------------------

    def hold(self, index: int) -> None:
        """Keep every other vCPU out of KVM_RUN until :meth:`release`: ``index`` takes a trap
        word out of guest memory for one step, and a vCPU running meanwhile would pass that
        address unseen. Those in KVM_RUN are kicked; they wait in ``before_run`` without
        parking (nothing is reported, their commands stay). Holders take turns."""
        with self.lock:
            while self.holder is not None and self.holder != index:
                self.wait_for_holder(self.cv)
            self.holder = index
            kicked: set[int] = set()
            while others := self.in_run - {index}:
                for i in others - kicked:
                    self.kick(i)
                kicked |= others
                self.cv.wait()

    def release(self, index: int) -> None:
        with self.lock:
            if self.holder == index:
                self.holder = None
                if self.holder_waiters:
                    self.cv.notify_all()
                    self._wake_all_own()

    def wait_for_holder(self, cv: threading.Condition) -> None:
        """Wait (lock held) on ``cv`` until woken; counted so that :meth:`release` knows there
        is somebody to wake."""
        self.holder_waiters += 1
        try:
            cv.wait()
        finally:
            self.holder_waiters -= 1

    def left_run(self, index: int) -> None:
        """``index`` is out of KVM_RUN (its port's ``after_exit`` began)."""
        self.in_run.discard(index)
        holder = self.holder
        if holder is not None and holder != index:
            # read after the discard: the holder, waiting for the others to leave KVM_RUN,
            # checks under the lock (a holder leaving its own run has nobody to tell)
            with self.lock:
                self.cv.notify_all()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.cv.notify_all()
            self._wake_all_own()

    # -- reporting --------------------------------------------------------------------------

    def reportable(self, ev: StopEvent, vcpus: set[int] | None = None) -> bool:
        """Whether ``ev`` is for the debugger now: an interrupt always is, a vCPU's own stop
        once that vCPU has been resumed (``vcpus``, default the last resume's)."""
        return ev.reason.kind is StopKind.INTERRUPT or ev.vcpu in (
            self.resumed if vcpus is None else vcpus
        )

    def wait_stop(self, timeout: float | None = None) -> StopEvent | None:
        """The next reportable stop once every vCPU is parked (None on timeout).

        A stop of a vCPU the resume asked to step goes first, whatever came first: the step is
        what GDB waits for, and a step's end reported later answers nothing (GDB takes it for
        a SIGTRAP it cannot explain; :meth:`drop_stale_stops`). Another vCPU's stop stays
        queued for its next resume, as gdbserver keeps such a status pending and reports the
        stepping thread's event first (docs/reference/peers.md §10)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while True:
                if not self.running:
                    for n, ev in self._reportable_first():
                        if self.reportable(ev):
                            del self.stops[n]
                            if self.history is not None:
                                self.note("report", (ev, list(self.stops)))
                            return ev
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self.cv.wait(remaining)

    def _reportable_first(self) -> list[tuple[int, StopEvent]]:
        """The queued stops with their positions, a stepping vCPU's first (lock held)."""
        queued = list(enumerate(self.stops))
        if self.stepping and len(queued) > 1:
            queued.sort(key=lambda item: item[1].vcpu not in self.stepping)  # stable
        return queued

    def drop_stale_stops(self, points: PointTable) -> int:
        """Drop the queued stops a new resume must not report; returns how many.

        A breakpoint or watchpoint stop whose point is gone: it would name no point. A step's
        end: it answers the resume that asked for the step, and that resume was answered by
        another stop, after which GDB counts the step as over (it reads the vCPU's registers
        afresh); reported now it is a SIGTRAP GDB cannot explain ("Thread 2 received signal
        SIGTRAP" after ``continue``), and the guest does not run (docs/reference/peers.md
        §10)."""
        if not self.stops:
            return 0
        with self.lock:
            keep: collections.deque[StopEvent] = collections.deque()
            for ev in self.stops:
                kind, pc = ev.reason.kind, ev.reason.pc
                if kind is StopKind.STEP:
                    continue  # the resume it answered is over (see above)
                if kind is StopKind.SW_BREAK and points.trap_at(DEFAULT_SPACE, pc) is None:
                    continue
                if kind is StopKind.HW_BREAK and (DEFAULT_SPACE, pc) not in points.hw_breaks:
                    continue
                addr = ev.reason.address
                if kind in _WATCH_STOPS and (DEFAULT_SPACE, addr) not in points.watch_addrs:
                    continue  # the watchpoint was deleted: reporting it would name no point
                keep.append(ev)
            dropped = len(self.stops) - len(keep)
            if dropped and self.history is not None:
                self.note("drop", [ev for ev in self.stops if ev not in keep])
            self.stops = keep
            return dropped
