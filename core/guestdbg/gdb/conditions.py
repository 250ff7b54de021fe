"""GDB's breakpoint conditions (``Z0``/``Z1`` with ``;X``) as guestdbg conditions.

GDB compiles ``break f if cond`` to agent expressions when the stub offers
``ConditionalBreakpoints+`` and its ``breakpoint condition-evaluation`` is ``auto`` (the
default) or ``target``. Each is parsed and checked here, when GDB inserts the breakpoint - one
that cannot be parsed is refused with an error reply and nothing changes - and evaluated on the
vCPU's thread at every hit (:mod:`guestdbg.session.hits`): registers by GDB register number,
memory through the debugger's view, in the target's byte order.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..conditions import AgentExpr, evaluate, parse_agent_expr
from ..points import HitContext
from .target import GdbArch


class AgentCondition:
    """Several expressions on one location: true when any is true (GDB's remote protocol)."""

    __slots__ = ("_addr_bits", "_big", "exprs")

    def __init__(self, exprs: Sequence[AgentExpr], big_endian: bool, addr_bits: int) -> None:
        self.exprs = tuple(exprs)
        self._big = big_endian
        self._addr_bits = addr_bits

    @classmethod
    def parse(cls, codes: Sequence[bytes], arch: GdbArch) -> AgentCondition:
        """Raises ``InvalidRequest`` (with the reason) for any expression it cannot take."""
        exprs = [parse_agent_expr(code) for code in codes]
        addr_bits = arch.registers[arch.pc_regnum].bitsize
        return cls(exprs, arch.byteorder == "big", addr_bits)

    @property
    def description(self) -> str:
        n = len(self.exprs)
        size = sum(len(e.code) for e in self.exprs)
        return f"{n} agent expression{'s' if n > 1 else ''} ({size} bytes)"

    def __call__(self, hit: HitContext) -> bool:
        for e in self.exprs:
            value = evaluate(
                e,
                hit.gdb_register,
                hit.read_memory,
                big_endian=self._big,
                addr_bits=self._addr_bits,
            )
            if value:
                return True
        return False
