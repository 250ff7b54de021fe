"""The stub's state machine, without a socket: bytes from GDB in, bytes for GDB out.

Modelled on the ``gdbstub`` crate's ``GdbStubStateMachine`` (src/stub/state_machine.rs): the
transport feeds what it read (:meth:`GdbStub.receive`) and reports the target's stops
(:meth:`GdbStub.report_stop`); the stub answers. States are :class:`StubState`: IDLE (all vCPUs
stopped, packets answered), RUNNING (after a resume; 0x03 interrupts, the next stop is the
reply), CLOSING (detached; the transport closes after sending what is left).

Per packet: frame scan, one dict look-up to parse, one to dispatch, the handler's target
calls, one framing. Every failure becomes a reply: GuestDebugError subclasses their ``E``
code, anything else (a bug) is logged with its traceback, counted in
``StubContext.internal_errors`` and answered ``E01``, so no input can take the stub down.
"""

from __future__ import annotations

import logging

from ..errors import GuestDebugError, NotStopped
from .commands import parse_command
from .context import StubContext, StubState
from .error_replies import (
    INTERNAL_ERROR,
    BadChecksum,
    PacketTooLong,
    errno_for,
    error_reply,
)
from .features import DEFAULT_PACKET_SIZE, MIN_PACKET_SIZE
from .handlers import HANDLERS
from .stop_reply import format_stop_reply
from .target import DebugTarget, StopEvent
from .wire import BinaryReply, Frame, PacketReader, Signal, frame, run_length_encode

log = logging.getLogger(__name__)

_BUSY = error_reply(errno_for(NotStopped()))
_TOO_LONG = error_reply(errno_for(PacketTooLong()))
_BAD_CHECKSUM = error_reply(errno_for(BadChecksum()))


class GdbStub:
    """One GDB connection's protocol engine."""

    def __init__(
        self,
        target: DebugTarget,
        *,
        packet_size: int = DEFAULT_PACKET_SIZE,
        run_length: bool = False,
    ) -> None:
        """``run_length``: compress text replies (``c*N``). Off by default: encoding in Python
        costs more per reply than a local socket takes to carry the bytes it saves; worth it
        only on slow links."""
        if packet_size < MIN_PACKET_SIZE:
            raise ValueError(f"packet_size must be at least {MIN_PACKET_SIZE}")
        self.ctx = StubContext.for_target(target, packet_size)
        self.run_length = run_length
        self._reader = PacketReader(packet_size)
        self._acks = True
        self._last_packet = b""

    @property
    def state(self) -> StubState:
        return self.ctx.state

    @property
    def acks(self) -> bool:
        """False once ``QStartNoAckMode`` took effect."""
        return self._acks

    # -- transport side ----------------------------------------------------------------------

    def connection_made(self) -> None:
        """Stop the guest for the new debugger (``target.attach``); ``?`` reports this stop."""
        self.ctx.stopped(self.ctx.target.attach())

    def connection_lost(self) -> None:
        """Detach once if ``D``/``k`` did not; never raises (the connection is already gone)."""
        try:
            self.ctx.detach_once()
        except GuestDebugError as e:
            log.warning("detach after the connection closed failed: %s", e)
        except Exception:
            self.ctx.internal_errors += 1
            log.exception("detach after the connection closed failed")

    def receive(self, data: bytes) -> bytes:
        """Feed bytes read from GDB; returns the bytes to write back (acks, replies)."""
        out = bytearray()
        for item in self._reader.feed(data):
            if self.ctx.state is StubState.CLOSING:
                break
            if isinstance(item, Frame):
                self._on_frame(item, out)
            elif item is Signal.INTERRUPT:
                self._on_interrupt()
            elif item is Signal.NACK and self._acks and self._last_packet:
                out += self._last_packet
        return bytes(out)

    def report_stop(self, ev: StopEvent) -> bytes:
        """The target stopped while RUNNING: the stop reply, framed. Ignored in other states."""
        ctx = self.ctx
        if ctx.state is not StubState.RUNNING:
            log.debug("stop %s while %s: not reported", ev, ctx.state.value)
            return b""
        ctx.stopped(ev)
        # GDB prints O packets while it waits for a stop (remote.c remote_wait_as), and only
        # then: what the stop carries for the user (a breakpoint's code rewritten, the reason a
        # guest halted) goes out just before the stop it explains.
        for notice in ev.notices:
            ctx.console_text(f"guestdbg: {notice}\n")
        if ev.reason.why:
            ctx.console_text(f"guestdbg: {ev.reason.why}\n")
        body = format_stop_reply(
            ev,
            ctx.features,
            ctx.client,
            ctx.codec,
            ctx.expedite,
            ctx.expedite_values(ev.vcpu),
        )
        out = bytearray()
        self._emit(body, out)
        return bytes(out)

    # -- packets -----------------------------------------------------------------------------

    def handle_packet(self, body: bytes) -> bytes | None:
        """One unframed packet body in, the reply body out (None: nothing to send now)."""
        try:
            cmd = parse_command(body)
            if cmd is None:
                return b""
            return HANDLERS[type(cmd)](self.ctx, cmd)
        except GuestDebugError as e:
            log.debug("%r -> %s: %s", body[:40], type(e).__name__, e)
            return error_reply(errno_for(e))
        except Exception:
            self.ctx.internal_errors += 1
            log.exception("internal error handling %r", body[:80])
            return error_reply(INTERNAL_ERROR)

    def _on_frame(self, fr: Frame, out: bytearray) -> None:
        if not fr.checksum_ok:
            if self._acks:
                out += b"-"
                return
            reply: bytes | None = _BAD_CHECKSUM
        else:
            if self._acks:
                out += b"+"
            if fr.oversized:
                reply = _TOO_LONG
            elif self.ctx.state is StubState.RUNNING:
                # All-stop: GDB sends nothing but 0x03 while the guest runs.
                reply = _BUSY
            else:
                reply = self.handle_packet(fr.body)
        self._emit(reply, out)

    def _emit(self, reply: bytes | None, out: bytearray) -> None:
        ctx = self.ctx
        if ctx.console:
            for line in ctx.console:
                out += frame(line)
            ctx.console.clear()
        if reply is None:
            return
        if self.run_length and not isinstance(reply, BinaryReply):
            reply = run_length_encode(reply)
        packet = frame(reply)
        out += packet
        self._last_packet = packet
        if ctx.no_ack_requested:
            ctx.no_ack_requested = False
            self._acks = False

    def _on_interrupt(self) -> None:
        ctx = self.ctx
        if ctx.state is not StubState.RUNNING or ctx.interrupt_sent:
            return  # already stopped: the stop reply is on its way (or was sent)
        ctx.interrupt_sent = True
        try:
            ctx.target.interrupt()
        except GuestDebugError as e:
            log.warning("interrupt failed: %s", e)
