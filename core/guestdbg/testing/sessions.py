"""The kit's sessions: a fresh VM from the profile under a real :class:`Session`, always closed.

Every check that runs the guest goes through the public session path (points, resume,
``wait_stop``), so what it checks is the round trip through the plugin's
``encode_guest_debug``, the VM's KVM_SET_GUEST_DEBUG, KVM_RUN and the decoded KVM_EXIT_DEBUG.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..arch import ArchInfo, CoreInfo
from ..events import ResumeAction, StopEvent
from ..plugins import Registry
from ..session.session import Session
from .profile import ConformanceProfile

STOP_TIMEOUT = 10.0
"""Seconds a loop of a few instructions gets to reach an armed point; only a hang takes it."""


@contextmanager
def open_session(
    registry: Registry, arch: ArchInfo, core: CoreInfo, profile: ConformanceProfile
) -> Iterator[Session]:
    session = Session(profile.make_vm(), arch, core.name, policy=profile.policy, registry=registry)
    try:
        yield session
    finally:
        session.close()


def run_to_stop(session: Session, timeout: float = STOP_TIMEOUT) -> StopEvent:
    """Continue vCPU 0 and return its stop; a guest that never stops fails the check."""
    session.resume({0: ResumeAction()})
    ev = session.wait_stop(timeout)
    if ev is None:
        session.interrupt()
        session.wait_stop(STOP_TIMEOUT)
        raise AssertionError(
            f"no stop within {timeout}s: the armed point never fired (or the guest hung)"
        )
    return ev
