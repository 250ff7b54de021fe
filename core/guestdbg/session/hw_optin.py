"""Software breakpoints served by a hardware instruction compare, where the user asks for it.

A trap word lives in guest memory, so a guest that rewrites its code there (a loader, a JIT)
loses it; an instruction-address compare (BookE IAC, x86 DR0-3 with RW=00) lives in the vCPU
and no store can touch it. Where the host cannot catch the guest's stores to a trap word's page
(BookE KVM has no read-only memory slots and no dirty log, docs/reference/kvm-debug-abi.md
§11), :mod:`.rewrites` notices a rewrite only at the next stop, and a rewrite between two stops
loses the hits until then. So the user may put one address in a hardware slot:
``monitor hwbreak ADDR`` (or the ``monitor rewrites hw`` policy does it when a rewrite is found).

From then on a software breakpoint (GDB's ``Z0``) at that address becomes a hardware one
(:meth:`.DebugState.normalise`): no word is written, the compare reports the hit as a hardware
breakpoint (GDB stops at its breakpoint whichever of ``swbreak``/``hwbreak`` the stop names;
the reverse case, an ``hbreak`` served by a trap word, is reported the same way). The choice is
remembered per address, not per point, because GDB removes every breakpoint at each stop and
inserts it again to resume; a slot is reserved for each address so a later ``Z0`` cannot find
them all taken.
"""

from __future__ import annotations

from ..errors import InvalidRequest, NoFreeSlot, UnsupportedByArch
from ..points import DebugPoint, PointKind, SwEntry
from .debug_state import DebugState
from .hits import PointStats


def why_not_possible(state: DebugState) -> str | None:
    """Why this session has no instruction compare to give a software breakpoint, or None."""
    caps = state.caps
    if caps.hw_break_via_sw:
        return (
            "this host serves hardware breakpoints with trap words too (the instruction "
            f"compares are the guest's under the {state.policy} policy)"
        )
    if caps.hw_breakpoints == 0:
        return f"{state.core_name} offers the debugger no hardware breakpoints"
    return None


def _reserve(state: DebugState, key: tuple[str, int]) -> None:
    """Raise unless ``key`` can have a compare along with every address already opted in and
    every hardware breakpoint in the table; changes nothing."""
    why = why_not_possible(state)
    if why is not None:
        raise UnsupportedByArch(why)
    space, addr = key
    pts, caps = state.points, state.caps
    pts.check(DebugPoint(PointKind.HW_BREAK, addr, caps.hw_break_lengths[0], space))
    if key in pts.hw_breaks:
        return  # an hbreak is there already: the same compare serves both
    taken = {k for k, e in pts.hw_breaks.items() if not e.via_sw} | state.hw_served | {key}
    used = len(taken) + (len(pts.watches) if caps.shared_slots else 0)
    if used > caps.hw_breakpoints:
        raise NoFreeSlot(
            f"all {caps.hw_breakpoints} hardware breakpoint slots are taken or reserved "
            f"({', '.join(f'{a:#x}' for _, a in sorted(taken - {key}))}); "
            f"cannot serve {addr:#x} with one"
        )


def opt_in(state: DebugState, space: str, addr: int) -> None:
    """Serve software breakpoints at ``addr`` by a hardware compare from now on. A software
    breakpoint inserted there now moves at once (its trap word goes: the original word back,
    or the guest's new one left where the guest rewrote it). NoFreeSlot or UnsupportedByArch,
    and nothing changes, when no compare can be had."""
    if addr < 0:
        raise InvalidRequest("negative address")
    key = (space, addr)
    if key in state.hw_served:
        return
    _reserve(state, key)
    live = state.points.sw.get(key)
    state.hw_served.add(key)
    if live is not None:
        _move_live(state, live)


def _move_live(state: DebugState, entry: SwEntry) -> None:
    pts = state.points
    old = entry.point
    del pts.sw[(old.space, old.addr)]
    pts.sw_generation += 1
    new = state.normalise(old)
    pts.insert(new, entry.refs)  # checked by _reserve: cannot fail
    other = pts.trap_at(old.space, old.addr)  # an hbreak served by the same word keeps it
    if entry.inserted and not (other is not None and other.inserted):
        state.trap_writer.remove(entry)  # the guest's own word stays where it rewrote it
    entry.inserted = False
    cond = state.conditions.pop(old, None)
    if cond is not None:
        state.conditions[new] = cond
    state.point_stats.setdefault(new, PointStats())


def opt_out(state: DebugState, space: str, addr: int) -> None:
    """Software breakpoints at ``addr`` are trap words again. Refused while one is inserted
    there (GDB's ``breakpoint always-inserted on``): its removal must still find it."""
    key = (space, addr)
    if key not in state.hw_served:
        raise InvalidRequest(f"{addr:#x} is not served by a hardware compare")
    if key in state.points.hw_breaks:
        raise InvalidRequest(
            f"a breakpoint at {addr:#x} is inserted now; delete it (or set breakpoint "
            "always-inserted off) first"
        )
    state.hw_served.discard(key)
