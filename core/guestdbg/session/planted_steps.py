"""Single steps done with planted trap words, for arches whose policy leaves hardware
stepping to the guest (``caps.step_via_sw``; BookE guest-priority).

A step, or a step over a host trap before a continue, runs that vCPU alone with trap words
planted at every address the instruction can continue at (the arch's ``step_targets``). When it
reaches one, the planted words go, a suspended host trap comes back, and the hit becomes a step
(or, for a step-over, silently lets the other vCPUs go). A step that enters a guest handler
completes when the handler returns to a planted address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UnsupportedByArch
from ..events import StopKind, StopReason
from ..gdb.target import ResumeAction, StopEvent
from ..points import DEFAULT_SPACE, DebugPoint, PointKind, SwEntry
from .runner import RUN

if TYPE_CHECKING:
    from .session import Session


@dataclass
class PlantedStep:
    planted: list[DebugPoint]
    suspended: SwEntry | None
    targets: set[int]
    then: Mapping[int, ResumeAction] | None
    """None: report the step; else a silent step over a trap, then resume these."""


class PlantedSteps:
    """The session's planted-trap steps in flight, at most one per vCPU."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.active: dict[int, PlantedStep] = {}

    def resume(self, actions: Mapping[int, ResumeAction]) -> None:
        """Resume when steps are planted traps: a step, or a step over a host trap before a
        continue, runs that vCPU alone until it reaches one of the planted addresses."""
        s = self.session
        for i in sorted(actions):
            act = actions[i]
            over = s._point_under_pc(i)
            if act.step:
                self.begin(i, then=None)
                return
            if over is not None:
                self.begin(i, then=actions)
                return
        s._start(actions)

    def begin(self, vcpu: int, then: Mapping[int, ResumeAction] | None) -> None:
        s = self.session
        r = s.runners[vcpu]
        step_targets = getattr(r.ops, "step_targets", None)
        if step_targets is None:
            raise UnsupportedByArch(f"{s.arch.name} cannot plant single-step traps")
        pc = r.ops.pc()
        trap = s.points.trap_at(DEFAULT_SPACE, pc)
        suspended = trap if trap is not None and s.trap_writer.suspend(trap) else None
        planted: list[DebugPoint] = []
        try:
            targets = set(step_targets())  # reads the instruction: the original word by now
            for a in sorted(targets):
                if s.points.trap_at(DEFAULT_SPACE, a) is None:
                    p = DebugPoint(PointKind.SW_BREAK, a, s.caps.sw_break_size)
                    s.insert_point(p)
                    planted.append(p)
        except Exception:
            for p in planted:
                s.remove_point(p)
            if suspended is not None:
                s.trap_writer.rearm(suspended)
            raise
        self.active[vcpu] = PlantedStep(planted, suspended, targets, then)
        with s._cv:
            s.stop_all = False
            s._running.add(vcpu)
            r.start(RUN)

    def finish(self, vcpu: int) -> None:
        """Runs on the vCPU's thread when its planted-trap step ends, before it counts as
        stopped: remove the planted traps, re-arm a suspended one, turn the hit into a step."""
        s = self.session
        ctx = self.active.pop(vcpu)
        for p in ctx.planted:
            gone = s.points.remove(p)
            if isinstance(gone, SwEntry):
                s.trap_writer.remove(gone)
        if ctx.suspended is not None:
            s.trap_writer.rearm(ctx.suspended)
        resume_others = False
        with s._cv:
            for n, ev in enumerate(s._stops):
                if ev.vcpu != vcpu:
                    continue
                hit = ev.reason.kind in (StopKind.SW_BREAK, StopKind.HW_BREAK)
                if hit and ev.reason.pc in ctx.targets:
                    if ctx.then is None:
                        s._stops[n] = StopEvent(vcpu, StopReason(StopKind.STEP, ev.reason.pc))
                    else:
                        del s._stops[n]
                        resume_others = not s._stops
                break
        if resume_others and ctx.then is not None:
            s._start(ctx.then)
