"""Debug sessions over a VM: all-stop across vCPUs, lazy debug-state updates, migration."""

from .session import Session, SessionStats

__all__ = ["Session", "SessionStats"]
