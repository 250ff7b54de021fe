"""Serving ``c`` ``s`` ``C`` ``S`` ``vCont?`` ``vCont``: the stub goes RUNNING, no reply now.

``vCont`` actions apply leftmost first (manual, "vCont"): a thread named by an earlier action
keeps it, the default action (no thread id, or ``-1``) covers every vCPU left. Thread ``0``
("any") means the thread of the last stop. vCPUs no action covers stay stopped. ``s`` without
``vCont`` steps only the ``Hc`` thread; ``c`` continues every vCPU. A range step (``r``) is a
step the session repeats while the PC stays in the range, one stop in the end. A step the
target cannot do is refused even though GDB sends it unadvertised (gdbstub issues 89 and 167).
A continue that follows GDB's skip of a program breakpoint with its single-step breakpoint
becomes the step it stands for (:mod:`guestdbg.gdb.program_breakpoints`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import UnsupportedByArch
from ..commands.common import THREAD_ALL
from ..commands.resume import Resume, VCont, VContQuery
from ..context import StubContext, StubState
from ..target import ResumeAction

CONTINUE = ResumeAction(step=False)
STEP = ResumeAction(step=True)


def _check_step(ctx: StubContext) -> None:
    if not ctx.features.single_step:
        raise UnsupportedByArch("this target cannot single-step")


def _start(ctx: StubContext, actions: Mapping[int, ResumeAction]) -> None:
    ctx.target.resume(ctx.skips.resume(actions))
    ctx.state = StubState.RUNNING
    ctx.interrupt_sent = False


def vcont_query(ctx: StubContext, cmd: VContQuery) -> bytes:
    return ctx.features.vcont_reply()


def vcont(ctx: StubContext, cmd: VCont) -> None:
    actions: dict[int, ResumeAction] = {}
    for action in cmd.actions:
        if action.step:
            _check_step(ctx)
        if action.range is not None:
            what = ResumeAction(step=True, range=action.range)
        else:
            what = STEP if action.step else CONTINUE
        if action.thread is None or action.thread == THREAD_ALL:
            for vcpu in range(ctx.vcpus):
                actions.setdefault(vcpu, what)
        else:
            actions.setdefault(ctx.vcpu_of(action.thread), what)
    _start(ctx, actions)


def resume(ctx: StubContext, cmd: Resume) -> None:
    vcpu = ctx.resume_vcpu()
    if cmd.step:
        _check_step(ctx)
        actions = {vcpu: STEP}
    else:
        actions = dict.fromkeys(range(ctx.vcpus), CONTINUE)
    if cmd.addr is not None:
        ctx.skips.forget_skips()
        ctx.target.write_registers(vcpu, {ctx.target.gdb_arch.pc_regnum: cmd.addr})
    _start(ctx, actions)


HANDLERS = {
    VContQuery: vcont_query,
    VCont: vcont,
    Resume: resume,
}
