"""Debug sessions over a VM: all-stop across vCPUs, lazy debug-state updates, migration."""

from .port import Next, VcpuPort
from .session import Session, SessionStats

__all__ = ["Next", "Session", "SessionStats", "VcpuPort"]
