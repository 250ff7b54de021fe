"""Single steps run on the caller's thread, but a step that blocks in the kernel (a guest that
sleeps) must not hold the caller: the watchdog moves it to the vCPU thread, and an interrupt
then stops it as usual."""

from __future__ import annotations

import threading

from guestdbg.events import ResumeAction, StopKind
from guestdbg.session import Session

from .support import make_vm, symbols

SYM = symbols("session_wait")


def test_a_step_that_blocks_in_the_kernel_does_not_hold_the_caller(
    sessions: list[Session],
) -> None:
    s = Session(make_vm("session_wait", core="e500v2"), "e500v2")  # type: ignore[arg-type]
    sessions.append(s)
    for _ in range(2):  # mfmsr; oris
        s.resume({0: ResumeAction(step=True)})
        ev = s.wait_stop(10)
        assert ev is not None and ev.reason.kind is StopKind.STEP
    assert ev.reason.pc == SYM["sleep"]
    s.resume({0: ResumeAction(step=True)})  # mtmsr: MSR[WE] on; the step itself completes
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.pc == SYM["woken"]
    caller = threading.Thread(target=s.resume, args=({0: ResumeAction(step=True)},))
    caller.start()
    caller.join(10)
    assert not caller.is_alive(), "the caller stayed blocked in a sleeping guest's step"
    assert s.wait_stop(0.1) is None  # still asleep, now on the vCPU thread
    s.interrupt()
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.INTERRUPT
