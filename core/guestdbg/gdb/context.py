"""What one GDB connection's packet handlers share: the target, the features derived from it,
the selected threads, the last stop, and the connection's lifecycle state.

The handlers (``handlers/``) read and update this object and nothing else, so a handler can be
called, and tested, without a socket.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import GuestDebugError
from ..events import StopKind, StopReason
from .commands.common import THREAD_ALL, THREAD_ANY, format_thread_id
from .error_replies import UnknownThread
from .features import StubFeatures
from .program_breakpoints import ProgramBreakpointSkips
from .register_codec import RegisterCodec
from .target import DebugTarget, StopEvent, target_xml

log = logging.getLogger(__name__)

DETACH_DRAIN_TIMEOUT = 2.0
"""How long a lost connection waits for a running guest to stop before detaching anyway."""


class StubState(enum.Enum):
    IDLE = "idle"
    """Every vCPU is stopped; GDB sends packets and the stub answers them."""
    RUNNING = "running"
    """The guest runs; the only input that means something is 0x03 (or the connection closing).
    The next stop the target reports is the reply to the resume packet."""
    CLOSING = "closing"
    """Detached (``D``/``k``/lost): the connection is to be closed once the output is flushed."""


@dataclass
class StubContext:
    target: DebugTarget
    features: StubFeatures
    codec: RegisterCodec
    vcpus: int
    xml: bytes
    client: frozenset[str] = frozenset()
    """Features GDB announced in ``qSupported`` (``swbreak``, ``hwbreak``...)."""
    state: StubState = StubState.IDLE
    last_stop: StopEvent = field(
        default_factory=lambda: StopEvent(0, StopReason(StopKind.INTERRUPT, 0))
    )
    general_thread: int = THREAD_ANY
    resume_thread: int = THREAD_ANY
    thread_cursor: int = 0
    interrupt_sent: bool = False
    detached: bool = False
    no_ack_requested: bool = False
    console: list[bytes] = field(default_factory=list)
    """``O`` packets (already ``O``+hex) to send before the reply to the current packet."""
    internal_errors: int = 0
    """Exceptions that were not GuestDebugError: bugs, logged and answered with an error."""
    read_some: Callable[[int, Sequence[int]], Mapping[int, int | None]] | None = None
    """The target's optional ``read_some_registers``, resolved once."""
    expedite: Sequence[int] = ()
    skips: ProgramBreakpointSkips = field(default_factory=lambda: ProgramBreakpointSkips(None))
    gdb_breakpoints: set[tuple[int, int]] = field(default_factory=set)
    """(Z type, address) of the breakpoints GDB inserted on this connection."""
    """GDB's breakpoints on this connection and the program-breakpoint skips not applied."""

    @classmethod
    def for_target(cls, target: DebugTarget, packet_size: int) -> StubContext:
        arch = target.gdb_arch
        return cls(
            target=target,
            features=StubFeatures.derive(
                target.caps, packet_size, conditions=hasattr(target, "set_condition")
            ),
            codec=RegisterCodec(arch),
            vcpus=target.vcpu_count(),
            xml=target_xml(arch).encode(),
            read_some=getattr(target, "read_some_registers", None),
            expedite=tuple(arch.expedite),
            skips=ProgramBreakpointSkips(arch),
        )

    # -- threads ---------------------------------------------------------------------------

    def vcpu_of(self, thread: int) -> int:
        """The vCPU index a thread id names; ``0``/``-1`` mean the thread of the last stop."""
        if thread in (THREAD_ANY, THREAD_ALL):
            return self.last_stop.vcpu
        if not 1 <= thread <= self.vcpus:
            raise UnknownThread(f"no thread {format_thread_id(thread).decode()}")
        return thread - 1

    def general_vcpu(self) -> int:
        return self.vcpu_of(self.general_thread)

    def resume_vcpu(self) -> int:
        return self.vcpu_of(self.resume_thread)

    # -- stops -----------------------------------------------------------------------------

    def stopped(self, ev: StopEvent) -> None:
        """The guest stopped: selections fall back to the reporting thread (as gdbstub does)."""
        self.state = StubState.IDLE
        self.skips.forget_skips()
        self.last_stop = ev
        self.general_thread = THREAD_ANY
        self.resume_thread = THREAD_ANY
        self.interrupt_sent = False

    def expedite_values(self, vcpu: int) -> Mapping[int, int | None] | Sequence[int | None] | None:
        """The registers a stop reply carries: just those when the target can read just those."""
        try:
            if self.read_some is not None:
                return self.read_some(vcpu, self.expedite)
            return self.target.read_registers(vcpu)
        except GuestDebugError as e:
            log.warning("stop reply without registers: %s", e)
            return None

    # -- output ----------------------------------------------------------------------------

    def console_text(self, text: str) -> None:
        """Queue ``text`` for the GDB console as ``O`` packets that fit ``PacketSize``."""
        data = text.encode("utf-8", "replace")
        step = (self.features.packet_size - 1) // 2
        for at in range(0, len(data), step):
            self.console.append(b"O" + data[at : at + step].hex().encode())

    # -- lifecycle -------------------------------------------------------------------------

    def detach_once(self) -> None:
        """``target.detach()``, at most once per connection, with the guest stopped first.

        A guest still running (connection lost after ``c``) is interrupted and one stop awaited:
        in all-stop one reported stop means every vCPU is out of KVM_RUN. Errors from
        ``detach`` propagate (``D`` answers them with ``E``); the connection closes regardless.
        """
        if self.detached:
            return
        self.detached = True
        self.skips.forget_skips()
        running = self.state is StubState.RUNNING
        self.state = StubState.CLOSING
        target = self.target
        if running:
            try:
                target.interrupt()
                if target.wait_stop(DETACH_DRAIN_TIMEOUT) is None:
                    log.warning(
                        "guest did not stop within %ss; detaching anyway", DETACH_DRAIN_TIMEOUT
                    )
            except GuestDebugError as e:
                log.warning("could not stop the guest before detaching: %s", e)
        target.detach()
