"""A debug session over one VM: all-stop across vCPUs, as GDB's all-stop mode expects.

* A reported event stops every vCPU: the reporting vCPU's thread posts the stop and kicks the
  others out of KVM_RUN (a signal on real KVM). Events that other vCPUs hit before they notice
  are queued, not lost, and reported one per resume, bhyve-style; a queued breakpoint stop whose
  point was removed meanwhile is dropped (the vCPU never executed the trapped instruction).
* One vCPU can step while the others stay stopped: vCPUs not named in a resume stay parked.
* Resuming a vCPU that sits on a host breakpoint steps it over on that vCPU alone, with every
  other vCPU still stopped, so none runs past a temporarily removed trap word.
* Point changes only touch bookkeeping (and trap words in memory); each vCPU recomputes its
  ``kvm_guest_debug`` once, before its next KVM_RUN (see :meth:`Runner.sync_debug`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..arch import ArchInfo, ArchVcpuDebug, CoreInfo, OwnershipPolicy, VcpuDebugRequest
from ..errors import InvalidRequest, NotStopped, UnsupportedByArch
from ..events import StopKind, StopReason
from ..filter import FilterStats, ReinjectionFilter
from ..gdb.target import GdbArch, ResumeAction, StopEvent
from ..kvm.constants import KVM_EXIT_MMIO
from ..points import DEFAULT_SPACE, DebugPoint, PointKind, PointTable, SwEntry
from ..vcpu import VmHandle
from . import lifetime, traps
from .planted_steps import PlantedSteps
from .runner import RUN, STEP, STEP_OVER, Runner, StepOver, Watchdog

log = logging.getLogger(__name__)

ExitHandler = Callable[[int, int, memoryview], bool]
"""``handler(vcpu_index, exit_reason, kvm_run) -> keep running?`` for exits that are not the
debugger's (MMIO, I/O, HLT...): the VMM's own device model."""


@dataclass
class SessionStats:
    set_guest_debug_calls: int = 0
    injected: int = 0
    stops_reported: int = 0
    stops_dropped: int = 0
    errors: list[str] = field(default_factory=list)


_WATCH_STOPS = frozenset({StopKind.WATCH, StopKind.RWATCH, StopKind.AWATCH})
_UNSEEN_STOPS = frozenset({StopKind.INTERRUPT, StopKind.HALT, StopKind.GUEST_EVENT})
"""Stops that say nothing about a point under the PC: the vCPU has not hit it yet."""


def default_exit_handler(index: int, reason: int, run: memoryview) -> bool:
    """Without a VMM device model: MMIO is ignored (reads see zeros), anything else halts."""
    return reason == KVM_EXIT_MMIO


class Session:
    """Debug state and run control for one VM. Implements the GDB stub's ``DebugTarget``."""

    def __init__(
        self,
        vm: VmHandle,
        arch: str | ArchInfo,
        core: str | None = None,
        *,
        policy: str = OwnershipPolicy.HOST_PRIORITY,
        registry: object | None = None,
        exit_handler: ExitHandler | None = None,
        catch_guest_events: bool = False,
        attach: bool = True,
    ) -> None:
        from ..plugins import Registry, default_registry

        reg = registry if isinstance(registry, Registry) else default_registry()
        if isinstance(arch, ArchInfo):
            info, core_info = arch, arch.core(core)
        else:
            info, core_info = reg.resolve(arch)
            if core is not None:
                core_info = info.core(core)
        if policy not in OwnershipPolicy.ALL:
            raise InvalidRequest(f"unknown ownership policy {policy!r}; use {OwnershipPolicy.ALL}")
        self.vm = vm
        self.arch: ArchInfo = info
        self.core: CoreInfo = core_info
        self.registry = reg
        self.policy = policy
        self.exit_handler = exit_handler or default_exit_handler
        self.catch_guest_events = catch_guest_events
        self.stats = SessionStats()
        self.ops: list[ArchVcpuDebug] = [
            reg.vcpu_debug(VcpuDebugRequest(info, core_info, vm, v, policy)) for v in vm.vcpus
        ]
        if not self.ops:
            raise InvalidRequest("the VM has no vCPUs")
        self.caps = self.ops[0].caps
        self.points = PointTable(self.caps)
        self.trap_writer = traps.TrapWriter(vm, self.ops[0].sw_break_insn)
        self.filters = [ReinjectionFilter(self.points, ops.guest_verdict) for ops in self.ops]
        self.runners = [
            Runner(self, i, v, ops, f)
            for i, (v, ops, f) in enumerate(zip(vm.vcpus, self.ops, self.filters, strict=True))
        ]
        self._gdb_arch: GdbArch | None = None
        self._cv = threading.Condition(threading.Lock())
        self._running: set[int] = set()
        self._stops: collections.deque[StopEvent] = collections.deque()
        self.planted = PlantedSteps(self)
        self.watchdog = Watchdog()
        self._deferred: dict[int, ResumeAction] = {}
        self.stop_all = False
        self.attached = False
        self.saved_guest: list[Mapping[str, int]] = [{} for _ in self.ops]
        lifetime.track(self)
        if attach:
            self.attach()

    # -- identity ---------------------------------------------------------------------------

    @property
    def gdb_arch(self) -> GdbArch:
        if self._gdb_arch is None:
            self._gdb_arch = self.registry.gdb_arch(self.arch, self.core)
        return self._gdb_arch

    def vcpu_count(self) -> int:
        return len(self.runners)

    def vcpu_name(self, vcpu: int) -> str:
        r = self._runner(vcpu)
        state = "running" if vcpu in self._running else "stopped"
        return f"vCPU {r.index} ({self.core.name}, {state})"

    @property
    def traps_active(self) -> bool:
        """True while any trap word is in guest memory (the arch then asks KVM to exit on it)."""
        return bool(self.points.sw) or any(e.via_sw for e in self.points.hw_breaks.values())

    def filter_stats(self) -> FilterStats:
        total = FilterStats()
        for f in self.filters:
            total.add(f.stats)
        return total

    def _runner(self, vcpu: int) -> Runner:
        if not 0 <= vcpu < len(self.runners):
            raise InvalidRequest(f"no vCPU {vcpu}; the VM has {len(self.runners)}")
        return self.runners[vcpu]

    def _require_stopped(self) -> None:
        if self._running:
            raise NotStopped("the VM is running; stop it first")

    # -- attach / detach --------------------------------------------------------------------

    def attach(self) -> StopEvent:
        """A debugger connects: stop the VM (if running), drop stops queued for a previous
        debugger, take the debug facility as the policy says, and return the stop to report
        (INTERRUPT when the guest had to be stopped, HALT when it was already parked)."""
        with self._cv:
            was_running = sorted(self._running)
        self.stop()
        with self._cv:
            self._stops.clear()
        if not self.attached:
            self.saved_guest = [dict(ops.attach(self.policy)) for ops in self.ops]
            self.attached = True
        who = was_running[0] if was_running else 0
        kind = StopKind.INTERRUPT if was_running else StopKind.HALT
        return StopEvent(who, StopReason(kind, self.runners[who].ops.pc()))

    def detach(self) -> None:
        """Remove every point, clear hardware debug state on every vCPU, let the guest run.

        Guest memory ends byte-identical to what it would be without the debugger (every trap
        word restored, unless the guest itself overwrote it).
        """
        self.stop()
        for entry in list(self.points.traps()):
            self.trap_writer.remove(entry)
        self.points.clear()
        self.attached = False
        for r, saved in zip(self.runners, self.saved_guest, strict=True):
            r.step = False
            r.masked = frozenset()
            r.sync_debug()
            r.ops.detach(saved)
        with self._cv:
            self._stops.clear()
        self._start({i: ResumeAction() for i in range(len(self.runners))})

    def close(self) -> None:
        """Stop and forget the vCPU threads (the VM itself belongs to the VMM)."""
        self.stop()
        for r in self.runners:
            r.quit()

    # -- points -----------------------------------------------------------------------------

    def _normalise(self, point: DebugPoint) -> DebugPoint:
        """GDB's breakpoint "kind" is a size hint; a trap is always the arch's trap word."""
        if self._needs_trap(point) and point.length != self.caps.sw_break_size:
            return DebugPoint(point.kind, point.addr, self.caps.sw_break_size, point.space)
        return point

    def _needs_trap(self, point: DebugPoint) -> bool:
        return point.kind is PointKind.SW_BREAK or (
            point.kind is PointKind.HW_BREAK and self.caps.hw_break_via_sw
        )

    def insert_point(self, point: DebugPoint) -> None:
        """Add one reference to a point; a refused point changes nothing."""
        self._require_stopped()
        point = self._normalise(point)
        if point.kind.is_watch and not self.caps.watch_kinds:
            raise UnsupportedByArch(
                f"no hardware watchpoints for the host under the {self.policy} policy: the "
                "guest keeps its data-address compares"
                if self.policy != OwnershipPolicy.HOST_PRIORITY
                else f"{self.core.name} offers no hardware watchpoints"
            )
        self.points.check(point)
        if not self._needs_trap(point) or self._trap_entry_for(point) is not None:
            self.points.insert(point)
            return
        shared = self.points.trap_at(point.space, point.addr)  # a hbreak served by the same word
        probe = SwEntry(point)
        if shared is not None and shared.inserted:
            probe.original, probe.gpa, probe.inserted = shared.original, shared.gpa, True
        else:
            self.trap_writer.insert(self.runners[0].handle, probe)  # BadAddress: nothing written
        self.points.insert(point)
        entry = self._trap_entry_for(point)
        assert entry is not None
        entry.original, entry.gpa, entry.inserted = probe.original, probe.gpa, True

    def _trap_entry_for(self, point: DebugPoint) -> SwEntry | None:
        if point.kind is PointKind.SW_BREAK:
            return self.points.sw.get((point.space, point.addr))
        if point.kind is PointKind.HW_BREAK:
            hw = self.points.hw_breaks.get((point.space, point.addr))
            return hw.trap if hw is not None else None
        return None

    def remove_point(self, point: DebugPoint) -> str | None:
        """Remove one reference; returns a note when a trap word could not be restored."""
        self._require_stopped()
        gone = self.points.remove(self._normalise(point))
        if gone is None:
            return None
        entry = gone if isinstance(gone, SwEntry) else gone.trap
        if entry is None:
            return None
        other = self.points.trap_at(entry.point.space, entry.point.addr)
        if other is not None and other.inserted:
            entry.inserted = False  # the word stays: another point still traps there
            return None
        return self.trap_writer.remove(entry)

    # -- registers and memory ---------------------------------------------------------------

    def read_registers(self, vcpu: int) -> list[int | None]:
        self._require_stopped()
        return self.gdb_arch.read_registers(self._runner(vcpu).handle)

    def read_some_registers(self, vcpu: int, regnums: Sequence[int]) -> Mapping[int, int | None]:
        """Only the registers named (the stub's expedited ones), if the arch can read a subset
        cheaply; else a full read."""
        self._require_stopped()
        handle = self._runner(vcpu).handle
        some = getattr(self.gdb_arch, "read_some_registers", None)
        if some is not None:
            result: Mapping[int, int | None] = some(handle, regnums)
            return result
        full = self.gdb_arch.read_registers(handle)
        return {n: full[n] for n in regnums if 0 <= n < len(full)}

    def write_registers(self, vcpu: int, values: Mapping[int, int]) -> None:
        self._require_stopped()
        self.gdb_arch.write_registers(self._runner(vcpu).handle, values)

    def read_memory(self, vcpu: int, addr: int, length: int) -> bytes:
        if length < 0 or addr < 0:
            raise InvalidRequest("negative address or length")
        r = self._runner(vcpu)
        return traps.shadow_read(
            self.points, self.vm, r.handle, addr, length, self.trap_writer.insn
        )

    def write_memory(self, vcpu: int, addr: int, data: bytes) -> None:
        self._require_stopped()
        if addr < 0:
            raise InvalidRequest("negative address")
        r = self._runner(vcpu)
        traps.shadow_write(self.points, self.vm, r.handle, addr, data, self.trap_writer.insn)

    # -- run control ------------------------------------------------------------------------

    def resume(self, actions: Mapping[int, ResumeAction]) -> None:
        """Run the named vCPUs (step or continue); vCPUs not named stay stopped.

        When one vCPU is named, it runs on the caller's thread for up to the watchdog's limit
        (50 ms) - most steps and hits end well within it - and on its own thread after that;
        so this call may take that long, and the stop is then usually ready for ``wait_stop``.
        """
        if not actions:
            raise InvalidRequest("a resume must name at least one vCPU")
        for i in actions:
            self._runner(i)
        with self._cv:
            self._require_stopped()
            self._drop_stale_stops()
            if self._stops:
                return  # report the queued stop first; nothing runs
            self.stop_all = False
        if self.caps.step_via_sw:
            self.planted.resume(actions)
            return
        overs = {i: o for i in sorted(actions) if (o := self._point_under_pc(i)) is not None}
        if len(actions) == 1:
            ((i, act),) = actions.items()
            with self._cv:
                self.stop_all = False
                self._running.add(i)
            self.runners[i].run_inline(STEP if act.step else RUN, overs.get(i), self.watchdog)
            return
        if len(overs) == 1:
            # The common case, done on the vCPU's own thread: it steps over the point while the
            # others are parked, then calls step_over_done, which starts them.
            ((i, over),) = overs.items()
            with self._cv:
                self.stop_all = False
                self._deferred = {j: a for j, a in actions.items() if j != i}
                self._running.add(i)
                self.runners[i].start(STEP if actions[i].step else RUN, over)
            return
        started: dict[int, ResumeAction] = {}
        for i in sorted(actions):
            act = actions[i]
            if i in overs:
                self._step_over(i, overs[i], report=act.step)
                with self._cv:
                    if self._stops:
                        return
                if act.step:
                    continue
            started[i] = act
        self._start(started)

    def step_over_done(self, vcpu: int) -> bool:
        """Called on a vCPU's thread once it stepped over the point under its PC: start the
        vCPUs that waited for it; False when a stop arrived meanwhile (the vCPU parks)."""
        with self._cv:
            deferred, self._deferred = self._deferred, {}
            if self.stop_all or self._stops:
                return False
            for j, act in deferred.items():
                self._running.add(j)
                self.runners[j].start(STEP if act.step else RUN)
            return True

    def _start(self, actions: Mapping[int, ResumeAction]) -> None:
        with self._cv:
            self.stop_all = False
            for i, act in actions.items():
                self._running.add(i)
                self.runners[i].start(STEP if act.step else RUN)

    def _point_under_pc(self, vcpu: int) -> StepOver | None:
        """What the vCPU would hit again before executing anything, if the debugger has already
        seen it stopped there: a trap word or an IAC at its PC, or (on arches whose watchpoints
        fire before the access) the watchpoint it just reported at this PC. A point the
        debugger was not told about is not stepped over: the vCPU hits it and it is reported."""
        pts = self.points
        r = self.runners[vcpu]
        if r.seen_at is None:
            return None
        last = r.last_stop
        watch_again = (
            self.caps.watch_before_access
            and last is not None
            and last.kind in _WATCH_STOPS
            and last.address is not None
            and (DEFAULT_SPACE, last.address) in pts.watch_addrs
        )
        if not pts.sw and not pts.hw_breaks and not watch_again:
            return None
        pc = r.ops.pc()
        if pc != r.seen_at:
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
        return trap, frozenset(masked), pc

    def _step_over(self, vcpu: int, over: StepOver, report: bool) -> None:
        """Step one vCPU over what is under its PC while the caller waits (used when several
        vCPUs need it: they go one after the other, everyone else parked)."""
        r = self.runners[vcpu]
        with self._cv:
            self._running.add(vcpu)
            r.start(STEP if report else STEP_OVER, over)
            while vcpu in self._running:
                self._cv.wait()

    def wait_stop(self, timeout: float | None = None) -> StopEvent | None:
        """The next stop once every vCPU is parked (None on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while not (self._stops and not self._running):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cv.wait(remaining)
            ev = self._stops.popleft()
        self.stats.stops_reported += 1
        if ev.reason.kind not in _UNSEEN_STOPS:
            self.runners[ev.vcpu].seen_at = ev.reason.pc
        if ev.reason.pc < 0:
            pc = self.runners[ev.vcpu].ops.pc()
            ev = StopEvent(ev.vcpu, StopReason(ev.reason.kind, pc, ev.reason.address))
        return ev

    def interrupt(self) -> None:
        """Stop every vCPU; the next ``wait_stop`` reports it (unless an event got there first)."""
        with self._cv:
            if not self._stops:
                who = min(self._running) if self._running else 0
                self._stops.append(StopEvent(who, StopReason(StopKind.INTERRUPT, -1)))
            self._halt_all_locked()
            self._cv.notify_all()

    def stop(self) -> None:
        """Stop everything and wait; queued stops are discarded (used by attach/detach)."""
        with self._cv:
            if not self._running:
                return
            self._halt_all_locked()
            while self._running:
                self._cv.wait()
            self._stops.clear()

    def _halt_all_locked(self) -> None:
        self.stop_all = True
        for i in self._running:
            self.runners[i].handle.kick()

    # -- called from vCPU threads -----------------------------------------------------------

    def post(self, ev: StopEvent, error: str | None = None) -> None:
        with self._cv:
            if error:
                self.stats.errors.append(error)
            self._stops.append(ev)
            if not self.stop_all:
                self.stop_all = True
                for i in self._running:
                    if i != ev.vcpu:
                        self.runners[i].handle.kick()
            self._cv.notify_all()

    def runner_done(self, index: int) -> None:
        if index in self.planted.active:
            self.planted.finish(index)
        with self._cv:
            self._running.discard(index)
            self._cv.notify_all()

    def vmm_exit(self, index: int, reason: int) -> bool:
        return self.exit_handler(index, reason, self.runners[index].handle.kvm_run)

    def _drop_stale_stops(self) -> None:
        """Drop queued breakpoint stops whose point is gone: that vCPU never executed the
        trapped instruction, so resuming it simply runs it."""
        keep: collections.deque[StopEvent] = collections.deque()
        for ev in self._stops:
            kind = ev.reason.kind
            if (
                kind is StopKind.SW_BREAK
                and self.points.trap_at(DEFAULT_SPACE, ev.reason.pc) is None
            ):
                self.stats.stops_dropped += 1
                continue
            if (
                kind is StopKind.HW_BREAK
                and (DEFAULT_SPACE, ev.reason.pc) not in self.points.hw_breaks
            ):
                self.stats.stops_dropped += 1
                continue
            keep.append(ev)
        self._stops = keep

    # -- migration ----------------------------------------------------------------------------

    def save_state(self) -> dict[str, object]:
        """The versioned debug-state document (see :mod:`guestdbg.session.migration`)."""
        from .migration import save

        return save(self)

    @classmethod
    def restore(cls, vm: VmHandle, doc: object, **options: object) -> Session:
        from .migration import restore

        return restore(vm, doc, **options)

    def deliver_pending(self, vcpu: int) -> bool:
        """Deliver a vCPU's pending reinjection now (without running it); True if there was one.
        The VMM may call this before saving the VM so that no pending state travels."""
        self._require_stopped()
        r = self._runner(vcpu)
        had = r.pending is not None
        r.deliver_pending()
        return had

    # -- monitor ----------------------------------------------------------------------------

    def monitor(self, command: str) -> str:
        from .monitor import run_monitor

        return run_monitor(self, command)
