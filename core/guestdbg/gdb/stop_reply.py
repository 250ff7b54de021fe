"""Stop replies: ``T<sig>thread:<tid>;<reason>;<regnum>:<value>;`` (manual, "Stop Reply Packets").

Every reply names its thread, a step included (gdbstub issue 196: without it GDB picks a thread
and switches after ``stepi``), and carries the arch's expedited registers (PC, SP, MSR) so GDB
does not need a ``g`` after each stop. A reason field is sent only when both sides announced it
in ``qSupported`` (``swbreak``/``hwbreak``) or the stub serves the packet type behind it
(watchpoints); otherwise the stop goes out as a plain SIGTRAP and GDB decides from the PC, as it
does with QEMU, rather than receiving a reason it did not ask for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ..events import StopKind
from .commands.common import format_thread_id
from .features import StubFeatures
from .register_codec import RegisterCodec
from .target import StopEvent

log = logging.getLogger(__name__)

NO_SIGNAL = 0
SIGINT = 2
SIGTRAP = 5
SIGABRT = 6
"""GDB's own signal numbers (gdb/signals.def), not the host's (Linux SIGSTOP is 19, GDB's 17)."""


def stop_signal(ev: StopEvent) -> int:
    """The signal a stop is reported with.

    Debug events are SIGTRAP and a debugger's stop request SIGINT, as QEMU and gdbserver send
    them. A HALT is no debug event: GDB would print "Program received signal SIGTRAP" at a PC
    with no breakpoint. A guest its device model stopped is reported with signal 0, "stopped
    for no particular reason" (the manual's stop-reply signal for a thread stopped without one,
    as for a vCont ``t`` action), which GDB prints as "Program stopped."; a vCPU that could not go
    on (a failed ioctl, KVM_EXIT_INTERNAL_ERROR) is SIGABRT, QEMU's signal for its
    internal-error run state (gdbstub.c ``gdb_vm_state_change``)."""
    kind = ev.reason.kind
    if kind is StopKind.INTERRUPT:
        return SIGINT
    if kind is StopKind.HALT:
        return SIGABRT if ev.reason.fault else NO_SIGNAL
    return SIGTRAP


_WATCH_FIELD = {
    StopKind.WATCH: b"watch",
    StopKind.RWATCH: b"rwatch",
    StopKind.AWATCH: b"awatch",
}


def reason_field(ev: StopEvent, features: StubFeatures, client: frozenset[str]) -> bytes:
    kind = ev.reason.kind
    if kind is StopKind.SW_BREAK:
        return b"swbreak:;" if "swbreak" in client else b""
    if kind is StopKind.HW_BREAK:
        if features.hw_breakpoints and "hwbreak" in client:
            return b"hwbreak:;"
        if not features.hw_breakpoints:
            log.warning("target reported a hardware breakpoint it does not offer: %s", ev)
        return b""
    field = _WATCH_FIELD.get(kind)
    if field is None:
        return b""
    if not features.watchpoints or ev.reason.address is None:
        log.warning("watchpoint stop without watchpoint support or address: %s", ev)
        return b""
    return b"%b:%x;" % (field, ev.reason.address)


def expedited(
    codec: RegisterCodec,
    regnums: Sequence[int],
    values: Mapping[int, int | None] | Sequence[int | None],
) -> bytes:
    """``values``: the whole register file, or a mapping holding at least ``regnums``."""
    parts = []
    for n in regnums:
        value = values[n]
        if value is not None:
            parts.append(b"%02x:%b;" % (n, codec.encode_one(n, value)))
    return b"".join(parts)


def format_stop_reply(
    ev: StopEvent,
    features: StubFeatures,
    client: frozenset[str],
    codec: RegisterCodec,
    expedite: Sequence[int] = (),
    values: Mapping[int, int | None] | Sequence[int | None] | None = None,
) -> bytes:
    """The reply for ``ev``; ``values`` are the stopped vCPU's registers (None: send none)."""
    out = b"T%02xthread:%b;%b" % (
        stop_signal(ev),
        format_thread_id(ev.vcpu + 1),
        reason_field(ev, features, client),
    )
    if values is not None and expedite:
        out += expedited(codec, expedite, values)
    return out
