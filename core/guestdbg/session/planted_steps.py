"""Single steps done with planted trap words, for arches whose policy leaves hardware
stepping to the guest (``caps.step_via_sw``; BookE guest-priority).

A step, or a step over a host trap before a continue, runs that vCPU alone with trap words
planted at every address the instruction can continue at (the arch's ``step_targets``). When it
reaches one, the planted words go, a suspended host trap comes back, and the hit becomes a step
(or, for a step-over, silently lets the other vCPUs go). A step that enters a guest handler
completes when the handler returns to a planted address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import UnsupportedByArch
from ..events import ResumeAction, StopEvent, StopKind, StopReason
from ..points import DEFAULT_SPACE, DebugPoint, PointKind, SwEntry
from .control import RUN, RunControl
from .debug_state import DebugState
from .port import VcpuPort


@dataclass
class PlantedStep:
    planted: list[DebugPoint]
    suspended: SwEntry | None
    targets: set[int]
    then: Mapping[int, ResumeAction] | None
    """None: report the step; else a silent step over a trap, then resume these."""


class PlantedSteps:
    """The planted-trap steps in flight, at most one per vCPU."""

    def __init__(self, state: DebugState, control: RunControl, ports: Sequence[VcpuPort]) -> None:
        self.state = state
        self.control = control
        self.ports = ports
        self.active: dict[int, PlantedStep] = {}
        control.on_park = self.finish

    def resume(self, actions: Mapping[int, ResumeAction], arch_name: str) -> None:
        """A step, or a step over a host trap before a continue, runs that vCPU alone until
        it reaches one of the planted addresses; anything else starts as asked."""
        for i in sorted(actions):
            if actions[i].step:
                self._begin(i, None, arch_name)
                return
            if self.ports[i].point_under_pc(False) is not None:
                self._begin(i, actions, arch_name)
                return
        self.control.resume(actions, {})

    def _begin(self, vcpu: int, then: Mapping[int, ResumeAction] | None, arch_name: str) -> None:
        st = self.state
        port = self.ports[vcpu]
        step_targets = getattr(port.ops, "step_targets", None)
        if step_targets is None:
            raise UnsupportedByArch(f"{arch_name} cannot plant single-step traps")
        pc = port.ops.pc()
        trap = st.points.trap_at(DEFAULT_SPACE, pc)
        suspended = trap if trap is not None and st.trap_writer.suspend(trap) else None
        planted: list[DebugPoint] = []
        try:
            targets = set(step_targets())  # reads the instruction: the original word by now
            for a in sorted(targets):
                if st.points.trap_at(DEFAULT_SPACE, a) is None:
                    p = DebugPoint(PointKind.SW_BREAK, a, st.caps.sw_break_size)
                    st.insert(p, port.handle)
                    planted.append(p)
        except Exception:
            for p in planted:
                st.remove(p)
            if suspended is not None:
                st.trap_writer.rearm(suspended)
            raise
        self.active[vcpu] = PlantedStep(planted, suspended, targets, then)
        with self.control.cv:
            self.control.stop_all = False
            self.control.give(vcpu, RUN)

    def finish(self, vcpu: int) -> None:
        """When the vCPU parks (control's lock held), before it counts as stopped: remove the
        planted traps, re-arm a suspended one, turn the hit into a step."""
        ctx = self.active.pop(vcpu, None)
        if ctx is None:
            return
        st = self.state
        for p in ctx.planted:
            gone = st.points.remove(p)
            if isinstance(gone, SwEntry):
                st.trap_writer.remove(gone)
        if ctx.suspended is not None:
            st.trap_writer.rearm(ctx.suspended)
        stops = self.control.stops
        for n, ev in enumerate(stops):
            if ev.vcpu != vcpu:
                continue
            hit = ev.reason.kind in (StopKind.SW_BREAK, StopKind.HW_BREAK)
            if hit and ev.reason.pc in ctx.targets:
                if ctx.then is None:
                    stops[n] = StopEvent(vcpu, StopReason(StopKind.STEP, ev.reason.pc))
                else:
                    del stops[n]
                    if not stops:
                        self.control.resume(ctx.then, {})
            break
