"""A :class:`~guestdbg.session.Session` on the adapter: attach, one single step, detach.

Everything above the protocol goes through it, so this is the adapter as guestdbg will use it:
the arch plugin's attach (x86 needs KVM_GET/SET_VCPU_EVENTS and reads KVM_GET_DEBUGREGS where
offered), the session's own vCPU thread with its kicks, and detach leaving no debug state
behind (once a kick still pending from the session is consumed, the kit's next KVM_RUN runs the
guest unstepped).
"""

from __future__ import annotations

from ...events import ResumeAction, StopKind
from ...session.session import Session
from .bench import Bench
from .state import check_runs_unstepped


def check_session_step(bench: Bench, arch: str) -> None:
    session = Session(bench.vm, arch)
    try:
        pc = bench.pc
        session.resume({0: ResumeAction(step=True)})
        ev = session.wait_stop(bench.kick_timeout)
        assert ev is not None, (
            f"a Session's single step of vCPU 0 did not stop within {bench.kick_timeout}s"
        )
        assert (ev.vcpu, ev.reason.kind) == (0, StopKind.STEP), (
            f"a Session's single step stopped as {ev}"
        )
        assert ev.reason.pc == bench.pc != pc, (
            f"a Session's single step from {pc:#x} reported {ev.reason.pc:#x}; the vCPU is at "
            f"{bench.pc:#x}"
        )
        session.detach()
    finally:
        session.close()
    # The session's last kick may still be pending (a kick that lands after a run returned is
    # kept for the next run): one more kick and a run consume it.
    bench.vcpu.kick()
    bench.run_once("a kick after the Session closed")
    check_runs_unstepped(bench, "after the Session detached and closed")
