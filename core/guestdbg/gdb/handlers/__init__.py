"""How the stub serves each command, one module per feature (as the ``gdbstub`` crate's
``src/stub/core_impl/``), mirroring :mod:`guestdbg.gdb.commands`.

A handler takes the connection's :class:`~guestdbg.gdb.context.StubContext` and a parsed
command, calls the target, and returns the reply body (None: no reply now, e.g. after a
resume). It raises GuestDebugError subclasses; the stub turns them into ``E`` codes. The table
is built once at import; dispatch is one dict look-up on the command's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import breakpoints, connection, memory, monitor, registers, resume, target_xml, threads

Handler = Callable[[Any, Any], bytes | None]

HANDLERS: dict[type, Handler] = {}
for _module in (breakpoints, connection, memory, monitor, registers, resume, target_xml, threads):
    HANDLERS.update(_module.HANDLERS)
