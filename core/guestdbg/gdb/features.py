"""What the stub offers GDB, derived from what the target really has (``gdbstub`` base.rs).

Never more: a feature the target lacks is left out of ``qSupported`` and ``vCont?``, and its
packets get the empty reply ("not supported"), so GDB never relies on something that is not
there (qiling advertises ``hwbreak+`` and non-stop it does not implement:
docs/reference/peers.md §4).
Software breakpoints are always offered: the point table takes them on every arch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capabilities import DebugCapabilities

DEFAULT_PACKET_SIZE = 4096
"""Bytes between ``$`` and ``#`` the stub accepts. GDB fits its whole ``M``/``X`` packet,
framing included, in this (remote.c remote_write_bytes_aux), and caps it at 16384."""
MIN_PACKET_SIZE = 256


@dataclass(frozen=True, slots=True)
class StubFeatures:
    packet_size: int
    hw_breakpoints: bool
    watchpoints: bool
    single_step: bool
    conditions: bool = False
    """Breakpoint conditions evaluated in the stub (``ConditionalBreakpoints+``): the target
    judges them and steps a vCPU past a false one on its own, which needs the host's
    single-step (a host that plants traps to step cannot)."""

    @classmethod
    def derive(
        cls,
        caps: DebugCapabilities,
        packet_size: int = DEFAULT_PACKET_SIZE,
        *,
        conditions: bool = False,
    ) -> StubFeatures:
        watch_slots = caps.hw_breakpoints if caps.shared_slots else caps.hw_watchpoints
        return cls(
            packet_size=packet_size,
            hw_breakpoints=caps.hw_breakpoints > 0,
            watchpoints=watch_slots > 0 and bool(caps.watch_kinds),
            single_step=caps.single_step,
            conditions=conditions and caps.single_step and not caps.step_via_sw,
        )

    def qsupported_reply(self) -> bytes:
        parts = [b"PacketSize=%x" % self.packet_size, b"QStartNoAckMode+", b"swbreak+"]
        if self.hw_breakpoints:
            parts.append(b"hwbreak+")
        parts += [b"qXfer:features:read+", b"vContSupported+"]
        if self.conditions:
            parts.append(b"ConditionalBreakpoints+")
        return b";".join(parts)

    def vcont_reply(self) -> bytes:
        """Range stepping (``r``) is a repeated single step: offered with ``s``."""
        return b"vCont;c;C;s;S;r" if self.single_step else b"vCont;c;C"

    def supports_point_type(self, gdb_type: int) -> bool:
        """Whether ``Z<type>`` is a packet this stub serves (otherwise: the empty reply)."""
        if gdb_type == 0:
            return True
        if gdb_type == 1:
            return self.hw_breakpoints
        return 2 <= gdb_type <= 4 and self.watchpoints
