"""Sessions alive in this process, and parking their vCPU threads at interpreter exit."""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet[Session] = weakref.WeakSet()
_exit_hook_registered = False


def _register_exit_hook() -> None:
    """Registered at the first session, i.e. after the VM's own resources registered theirs:
    atexit runs last-registered first, so the vCPU threads are parked before, for example,
    Unicorn's finalizers free the engines they run on."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_park_all_sessions)
        _exit_hook_registered = True


def _park_all_sessions() -> None:
    """At interpreter exit, get every vCPU thread out of KVM_RUN first: a daemon thread still
    inside a CPU emulator while the interpreter tears down crashes the process."""
    for s in list(_LIVE):
        try:
            s.close()
        except Exception:  # exiting anyway; nothing useful to report to
            log.debug("closing a session at exit failed", exc_info=True)


def track(session: Session) -> None:
    _LIVE.add(session)
    _register_exit_hook()
