"""Serving ``qRcmd`` (GDB's ``monitor``): the target runs its whitelisted command and the text
goes back as ``O`` console packets, then ``OK``. An unknown command's message is shown the same
way, then ``E16``, so the user reads why, and a script sees the failure."""

from __future__ import annotations

from ...errors import GuestDebugError
from ..commands.monitor import MonitorCommand
from ..context import StubContext


def monitor(ctx: StubContext, cmd: MonitorCommand) -> bytes:
    try:
        text = ctx.target.monitor(cmd.text)
    except GuestDebugError as e:
        ctx.console_text(f"{e}\n")
        raise
    if text:
        ctx.console_text(text if text.endswith("\n") else text + "\n")
    return b"OK"


HANDLERS = {MonitorCommand: monitor}
