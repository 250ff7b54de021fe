"""A debug session over one VM: all-stop across vCPUs, as GDB's all-stop mode expects.

The session is the debugger's side (the GDB stub's ``DebugTarget``): points, registers,
memory, resume/stop, attach/detach, migration, monitor. The vCPUs' side is one
:class:`~.port.VcpuPort` per vCPU, driven by whichever thread runs that vCPU:

* ``vcpu_threads="vmm"``: the VMM keeps its own vCPU threads and calls ``session.port(i)``'s
  ``before_run()``/``after_exit()`` around every KVM_RUN (see :mod:`.port`). The VM runs freely
  until a debugger attaches (``attach()``, or a GDB connecting to the stub); attaching kicks every
  vCPU and waits until each has parked, or fails with NotStopped within ``attach_timeout``.
* ``vcpu_threads="session"`` (default): the session starts a thread per vCPU that runs that same
  loop with ``exit_handler`` as the device model (:mod:`.threads`); the VM is stopped from the
  start.

How the pieces share state: :class:`~.debug_state.DebugState` (points, trap words, attach,
policy) and :class:`~.control.RunControl` (all-stop: commands, queued stops, step-over order)
are handed to each port; nothing reaches into the session.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..arch import ArchInfo, ArchVcpuDebug, CoreInfo, OwnershipPolicy, VcpuDebugRequest
from ..capabilities import CapabilityLimits, DebugCapabilities
from ..errors import GuestDebugError, InvalidRequest, MigrationError, NotStopped
from ..events import ResumeAction, StopEvent, StopKind, StopReason
from ..filter import FilterStats, ReinjectionFilter
from ..gdb.target import GdbArch
from ..kvm.constants import KVM_EXIT_MMIO
from ..plugins import Registry, default_registry
from ..points import Condition, DebugPoint, PointTable
from ..vcpu import VmHandle
from . import lifetime, migration, rewrites, traps
from .control import RunControl
from .debug_state import DebugState, SessionStats
from .hits import PointStats
from .monitor import run_monitor
from .planted_steps import PlantedSteps
from .port import VcpuPort
from .threads import ExitHandler, OwnedThreads
from .write_guard import TrapPageGuard

log = logging.getLogger(__name__)

__all__ = ["ExitHandler", "Session", "SessionStats", "default_exit_handler"]

_UNSEEN_STOPS = frozenset({StopKind.INTERRUPT, StopKind.HALT, StopKind.GUEST_EVENT})
"""Stops that say nothing about a point under the PC: the vCPU has not hit it yet."""
VCPU_THREADS = ("session", "vmm")
_SESSIONS: weakref.WeakValueDictionary[int, Session] = weakref.WeakValueDictionary()
"""Open sessions by ``id(vm)``: one debugger per VM."""


def default_exit_handler(index: int, reason: int, run: memoryview) -> bool:
    """Without a VMM device model: MMIO is ignored (reads see zeros), anything else halts."""
    return reason == KVM_EXIT_MMIO


def _lazy_gdb_arch(reg: Registry, info: ArchInfo, core: CoreInfo) -> Callable[[], GdbArch]:
    """The arch's GDB register layout, built at first use (a session without GDB and without
    conditions never needs it), from whichever thread asks first."""
    built: list[GdbArch] = []

    def get() -> GdbArch:
        if not built:
            built.append(reg.gdb_arch(info, core))
        return built[0]

    return get


class Session:
    """Debug state and run control for one VM. Implements the GDB stub's ``DebugTarget``."""

    closed: bool

    def __init__(
        self,
        vm: VmHandle,
        arch: str | ArchInfo,
        core: str | None = None,
        *,
        policy: str = OwnershipPolicy.HOST_PRIORITY,
        registry: Registry | None = None,
        exit_handler: ExitHandler | None = None,
        catch_guest_events: bool = False,
        attach: bool | None = None,
        vcpu_threads: str = "session",
        attach_timeout: float = 2.0,
        limits: CapabilityLimits | None = None,
    ) -> None:
        """``attach``: stop the VM and take the debug facility now (default: yes with the
        session's own threads, no with the VMM's, whose threads may not run yet).

        ``limits``: what the VMM narrows the debugger to, beyond what the host delivers (point
        kinds refused with a reason, fewer hardware slots); see :class:`CapabilityLimits`."""
        if registry is not None and not isinstance(registry, Registry):
            raise InvalidRequest(f"registry must be a guestdbg.plugins.Registry, not {registry!r}")
        if policy not in OwnershipPolicy.ALL:
            raise InvalidRequest(f"unknown ownership policy {policy!r}; use {OwnershipPolicy.ALL}")
        if vcpu_threads not in VCPU_THREADS:
            raise InvalidRequest(f"vcpu_threads must be one of {VCPU_THREADS}")
        if vcpu_threads == "vmm" and exit_handler is not None:
            raise InvalidRequest("with the VMM's own vCPU threads its device model is its own")
        if not vm.vcpus:
            raise InvalidRequest("the VM has no vCPUs")
        other = _SESSIONS.get(id(vm))
        if other is not None and not other.closed:
            raise InvalidRequest("this VM already has a debug session: close it first")
        reg = registry or default_registry()
        if isinstance(arch, ArchInfo):
            info, core_info = arch, arch.core(core)
        else:
            info, core_info = reg.resolve(arch)
            if core is not None:
                core_info = info.core(core)
        self.vm = vm
        self.arch: ArchInfo = info
        self.core: CoreInfo = core_info
        self.registry = reg
        self.vcpu_threads = vcpu_threads
        self.attach_timeout = attach_timeout if vcpu_threads == "vmm" else None
        self.ops: list[ArchVcpuDebug] = [
            reg.vcpu_debug(VcpuDebugRequest(info, core_info, vm, v, policy)) for v in vm.vcpus
        ]
        self.caps: DebugCapabilities = self.ops[0].caps
        """What this session offers: the arch's capabilities as this host delivers them (each
        plugin reads the kernel and, where it cannot be trusted to say, probes it), narrowed
        by ``limits``."""
        if limits is not None:
            self.caps = self.caps.narrowed(limits)
        self.state = DebugState(
            self.caps,
            traps.TrapWriter(vm, self.ops[0].sw_break_insn),
            policy,
            len(self.ops),
            catch_guest_events,
            core_info.name,
        )
        self.state.guard = TrapPageGuard.for_vm(vm)
        handles = vm.vcpus
        self.control = RunControl(len(handles), lambda i: handles[i].kick())
        self.ports = [
            VcpuPort(i, v, ops, ReinjectionFilter(self.state.points, ops.guest_verdict),
                     self.state, self.control)
            for i, (v, ops) in enumerate(zip(handles, self.ops, strict=True))
        ]  # fmt: skip
        self.planted = PlantedSteps(self.state, self.control, self.ports)
        self.state.gdb_arch = _lazy_gdb_arch(reg, info, core_info)
        self.closed = False
        self._threads: OwnedThreads | None = None
        if vcpu_threads == "session":
            self._threads = OwnedThreads(self.ports, exit_handler or default_exit_handler)
        else:
            self.control.release_all()  # the VMM's threads run freely until a debugger attaches
        _SESSIONS[id(vm)] = self
        lifetime.track(self)
        if attach if attach is not None else vcpu_threads == "session":
            self.attach()

    # -- identity ---------------------------------------------------------------------------

    @property
    def gdb_arch(self) -> GdbArch:
        return self.state.gdb_arch()

    @property
    def points(self) -> PointTable:
        return self.state.points

    @property
    def stats(self) -> SessionStats:
        return self.state.stats

    @property
    def policy(self) -> str:
        return self.state.policy

    @property
    def attached(self) -> bool:
        return self.state.attached

    @property
    def saved_guest(self) -> list[Mapping[str, int]]:
        return self.state.saved_guest

    @property
    def trap_writer(self) -> traps.TrapWriter:
        return self.state.trap_writer

    @property
    def traps_active(self) -> bool:
        return self.state.traps_active

    @property
    def catch_guest_events(self) -> bool:
        return self.state.catch_guest_events

    @catch_guest_events.setter
    def catch_guest_events(self, on: bool) -> None:
        self.state.catch_guest_events = on

    def port(self, vcpu: int) -> VcpuPort:
        """The port a VMM's vCPU thread calls around KVM_RUN (``vcpu_threads="vmm"``)."""
        return self._port(vcpu)

    def vcpu_count(self) -> int:
        return len(self.ports)

    def vcpu_name(self, vcpu: int) -> str:
        p = self._port(vcpu)
        state = "running" if vcpu in self.control.running else "stopped"
        return f"vCPU {p.index} ({self.core.name}, {state})"

    def filter_stats(self) -> FilterStats:
        total = FilterStats()
        for p in self.ports:
            total.add(p.filter.stats)
        return total

    def _port(self, vcpu: int) -> VcpuPort:
        if not 0 <= vcpu < len(self.ports):
            raise InvalidRequest(f"no vCPU {vcpu}; the VM has {len(self.ports)}")
        return self.ports[vcpu]

    def _require_stopped(self) -> None:
        if self.control.running:
            raise NotStopped("the VM is running; stop it first")

    # -- attach / detach --------------------------------------------------------------------

    def attach(self) -> StopEvent:
        """A debugger connects: stop the VM (if running), drop stops queued for a previous
        debugger, take the debug facility as the policy says, and return the stop to report
        (INTERRUPT when the guest had to be stopped, HALT when it was already parked).

        With the VMM's threads, a vCPU that does not park within ``attach_timeout`` makes this
        raise NotStopped and the VM runs on, undebugged."""
        was_running = sorted(self.control.running)
        self.control.stop(self.attach_timeout)
        if not self.state.attached:
            self.state.saved_guest[:] = [dict(ops.attach()) for ops in self.ops]
            self.state.attached = True
        who = was_running[0] if was_running else 0
        kind = StopKind.INTERRUPT if was_running else StopKind.HALT
        return StopEvent(who, StopReason(kind, self.ports[who].ops.pc()))

    def detach(self) -> None:
        """Remove every point, clear hardware debug state on every vCPU, let the guest run.

        Guest memory ends byte-identical to what it would be without the debugger (every trap
        word restored, unless the guest itself overwrote it).
        """
        self.control.stop(self.attach_timeout)
        self.state.remove_all()
        if self.state.guard is not None:
            self.state.guard.restore()
        self.state.attached = False
        for p, saved in zip(self.ports, self.state.saved_guest, strict=True):
            p.step = False
            p.masked = frozenset()
            p.sync_debug()
            p.ops.detach(saved)
        self.control.release_all()

    def close(self) -> None:
        """The session ends; the VM stays the VMM's. guestdbg's own vCPU threads stop (the VM
        is left stopped); the VMM's threads run on, undebugged."""
        if self.closed:
            return
        guard = self.state.guard
        if guard is not None and guard.applied:
            try:  # the VMM's slots come back even when no debugger detached
                self.control.stop(self.attach_timeout)
                guard.restore()
            except GuestDebugError as e:
                log.warning("closing with trap pages still read-only: %s", e)
        if self._threads is not None:
            self.control.stop()
            self.control.close()
            self._threads.join()
        else:
            self.control.release_all()
        self.closed = True

    # -- points -----------------------------------------------------------------------------

    def insert_point(self, point: DebugPoint, condition: Condition | None = None) -> None:
        """Add one reference to a point; a refused point changes nothing.

        ``condition`` (breakpoints only) is judged on the hitting vCPU's thread at every hit,
        given a :class:`~.hits.HitView` of that vCPU's registers and memory: a false one lets
        the vCPU run on without a stop (see :mod:`.hits`). It replaces the point's condition;
        None makes the point unconditional."""
        with self.control.lock:  # against guest_memory_written from the VMM's threads
            self._require_stopped()
            self.state.insert(point, self.ports[0].handle, condition)

    def set_condition(self, point: DebugPoint, condition: Condition | None) -> None:
        """Replace an inserted breakpoint's condition without adding a reference (GDB sends
        ``Z0`` again for a location whose condition changed)."""
        with self.control.lock:
            self._require_stopped()
            self.state.set_condition(point, condition)

    def point_stats(self) -> dict[DebugPoint, PointStats]:
        """Per inserted point: hits, condition evaluations, stops, failed evaluations."""
        return {p: dataclasses.replace(st) for p, st in self.state.point_stats.items()}

    def remove_point(self, point: DebugPoint) -> str | None:
        """Remove one reference; returns a note when a trap word could not be restored."""
        with self.control.lock:
            self._require_stopped()
            return self.state.remove(point)

    # -- registers and memory ---------------------------------------------------------------

    def read_registers(self, vcpu: int) -> list[int | None]:
        self._require_stopped()
        return self.gdb_arch.read_registers(self._port(vcpu).handle)

    def read_some_registers(self, vcpu: int, regnums: Sequence[int]) -> Mapping[int, int | None]:
        """Only the registers named (the stub's expedited ones), if the arch can read a subset
        cheaply; else a full read."""
        self._require_stopped()
        handle = self._port(vcpu).handle
        some = getattr(self.gdb_arch, "read_some_registers", None)
        if some is not None:
            result: Mapping[int, int | None] = some(handle, regnums)
            return result
        full = self.gdb_arch.read_registers(handle)
        return {n: full[n] for n in regnums if 0 <= n < len(full)}

    def write_registers(self, vcpu: int, values: Mapping[int, int]) -> None:
        self._require_stopped()
        self.gdb_arch.write_registers(self._port(vcpu).handle, values)

    def register_names(self) -> list[str]:
        """The arch's register names, in GDB's order (``r0``... ``pc``, ``rax``... ``rip``)."""
        return [r.name for r in self.gdb_arch.registers]

    def read_named_registers(
        self, vcpu: int, names: Iterable[str] | None = None
    ) -> dict[str, int | None]:
        """Registers by name (all of them by default); None where the vCPU cannot say."""
        index = self._register_index(names)
        values = self.read_registers(vcpu)
        return {name: values[n] for name, n in index.items()}

    def write_named_registers(self, vcpu: int, values: Mapping[str, int]) -> None:
        """Write registers by name; an unknown name changes nothing."""
        index = self._register_index(values)
        self.write_registers(vcpu, {index[name]: value for name, value in values.items()})

    def _register_index(self, names: Iterable[str] | None) -> dict[str, int]:
        known = {r.name: n for n, r in enumerate(self.gdb_arch.registers)}
        if names is None:
            return known
        wanted = list(names)
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise InvalidRequest(f"no register(s) {unknown} on {self.core.name}")
        return {n: known[n] for n in wanted}

    def read_memory(self, vcpu: int, addr: int, length: int) -> bytes:
        if length < 0 or addr < 0:
            raise InvalidRequest("negative address or length")
        st = self.state
        return traps.shadow_read(
            st.points, self.vm, self._port(vcpu).handle, addr, length, st.trap_writer.insn
        )

    def write_memory(self, vcpu: int, addr: int, data: bytes) -> None:
        if addr < 0:
            raise InvalidRequest("negative address")
        st = self.state
        with self.control.lock:
            self._require_stopped()
            traps.shadow_write(
                st.points, self.vm, self._port(vcpu).handle, addr, data, st.trap_writer.insn
            )

    def guest_memory_written(self, gpa: int, length: int) -> list[str]:
        """The VMM wrote guest-physical ``[gpa, gpa+length)`` through its own mapping (virtio
        DMA, loading an image): trap words there that the write replaced are re-armed, the new
        word becoming the breakpoint's original. Returns what was found, one message each (the
        debugger sees them with the next stop too); nothing to do is an empty list.

        Callable from any thread, the VM running or stopped, after the write: it takes the
        run-control lock, so it never runs alongside a stop's own check or a point change. A
        trap word a vCPU holds out of memory to step over it is left alone: that step's
        re-arm compares the word and keeps a new one (see :mod:`.rewrites`). The write itself
        is the VMM's: one landing on a trap word in the instant guestdbg writes that word
        (inserting it, or re-arming it after a step over it) can still be lost under the
        trap; a VMM that writes guest code while the VM runs and a debugger is attached
        should call this after each such write."""
        if gpa < 0 or length < 0:
            raise InvalidRequest("negative guest-physical address or length")
        with self.control.lock:
            return rewrites.memory_written(self.state, gpa, length)

    # -- run control ------------------------------------------------------------------------

    def resume(self, actions: Mapping[int, ResumeAction]) -> None:
        """Run the named vCPUs (continue, step or range step); vCPUs not named stay stopped.

        With the session's own threads a resume of one vCPU runs on the caller's thread for up
        to the watchdog's limit (50 ms) - most steps and hits end well within it - and on the
        vCPU's thread after that; so this call may take that long, and the stop is then usually
        ready for ``wait_stop``.
        """
        if not actions:
            raise InvalidRequest("a resume must name at least one vCPU")
        for i in actions:
            self._port(i)
        c = self.control
        with c.lock:
            self._require_stopped()
            self.state.stats.stops_dropped += c.drop_stale_stops(self.state.points)
            named = set(actions)
            c.stepping = {i for i, a in actions.items() if a.step}  # their stops go first
            if c.stops and any(c.reportable(ev, named) for ev in c.stops):
                if c.history is not None:
                    c.note("resume, queued stop reported", (dict(actions), list(c.stops)))
                c.resumed = named
                return  # report a resumed vCPU's queued stop first; nothing runs
            if self.state.guard is not None:
                self.state.guard.apply()  # every vCPU is parked: the slots can change
        if self.caps.step_via_sw:
            self.planted.resume(actions, self.arch.name)
            return
        before_access = self.caps.watch_before_access
        overs = {
            i: o for i in sorted(actions) if (o := self.ports[i].point_under_pc(before_access))
        }
        inline = self._threads is not None and len(actions) == 1
        if inline:
            ((i, _),) = actions.items()
            port = self.ports[i]
            port.inline, port.overdue = True, False
        c.resume(actions, overs)
        if inline:
            assert self._threads is not None
            self._threads.run_inline(port)

    def wait_stop(self, timeout: float | None = None) -> StopEvent | None:
        """The next stop once every vCPU is parked (None on timeout)."""
        ev = self.control.wait_stop(timeout)
        if ev is None:
            return None
        self.state.stats.stops_reported += 1
        with self.control.lock:  # every vCPU is parked: no trap word is out for a step
            notices = rewrites.check_at_stop(self.state)
        if notices:
            self.state.traps_changed()  # a rewritten point may have moved to a compare
            for text in notices:
                log.info("%s", text)
            ev = dataclasses.replace(ev, notices=ev.notices + notices)
        if ev.reason.kind not in _UNSEEN_STOPS:
            self.ports[ev.vcpu].seen_at = ev.reason.pc
        if ev.reason.pc < 0:
            pc = self.ports[ev.vcpu].ops.pc()
            ev = dataclasses.replace(ev, reason=dataclasses.replace(ev.reason, pc=pc))
        return ev

    def interrupt(self) -> None:
        """Stop every vCPU; the next ``wait_stop`` reports it (unless an event got there first)."""
        self.control.interrupt()

    def stop(self) -> None:
        """Stop everything and wait; queued stops are discarded (used by attach/detach)."""
        self.control.stop(self.attach_timeout)

    # -- migration ----------------------------------------------------------------------------

    def save_state(self) -> dict[str, object]:
        """The versioned debug-state document (see :mod:`guestdbg.session.migration`)."""
        self._require_stopped()
        return migration.save(self.state, self.arch, self.core, self.ports)

    @classmethod
    def restore(cls, vm: VmHandle, doc: object, **options: object) -> Session:
        """A new session on ``vm`` carrying the document's debug state (validated first;
        MigrationError before anything changes)."""
        plan = migration.read(doc)
        try:
            s = cls(vm, plan.arch, plan.core, policy=plan.policy, attach=False, **options)  # type: ignore[arg-type]
        except GuestDebugError as e:
            raise MigrationError(f"cannot rebuild the session: {e}") from e
        try:
            migration.apply(plan, s.state, s.ports, s.arch, vm)
        except MigrationError:
            s.close()
            raise
        s.state.traps_changed()
        return s

    def deliver_pending(self, vcpu: int) -> bool:
        """Deliver a vCPU's pending reinjection now (without running it); True if there was one.
        The VMM may call this before saving the VM so that no pending state travels."""
        self._require_stopped()
        p = self._port(vcpu)
        had = p.pending is not None
        p.deliver_pending()
        return had

    # -- monitor ----------------------------------------------------------------------------

    def monitor(self, command: str) -> str:
        return run_monitor(self, command)
