"""Monitor commands (GDB ``monitor ...``): a fixed whitelist, never arbitrary code.

QEMU pipes ``monitor`` into its full HMP, so anyone who reaches the stub runs any command
(docs/reference/peers.md §1.1). Here each command is a function in :data:`COMMANDS`; anything
else is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InvalidRequest
from ..points import DEFAULT_SPACE, DebugPoint
from . import hw_optin, rewrites

if TYPE_CHECKING:
    from .session import Session


def _help(s: Session, args: list[str]) -> str:
    return "".join(f"{name:10s} {fn.__doc__ or ''}\n" for name, (fn, _) in COMMANDS.items())


def _points(s: Session, args: list[str]) -> str:
    """list the host's breakpoints and watchpoints, with hits and condition evaluations"""
    lines = []
    for e in s.points.sw.values():
        line = f"swbreak {e.point.addr:#x} refs={e.refs} inserted={e.inserted}"
        lines.append(line + _hits(s, e.point))
    for h in s.points.hw_breaks.values():
        via = " (served by a trap word)" if h.via_sw else ""
        if (h.point.space, h.point.addr) in s.state.hw_served:
            via = " (software breakpoints here served by a compare: monitor hwbreak)"
        lines.append(f"hwbreak {h.point.addr:#x} refs={h.refs}{via}" + _hits(s, h.point))
    for w in s.points.watches.values():
        lines.append(f"{w.point.kind.value} {w.point.addr:#x} len={w.point.length} refs={w.refs}")
    out = "\n".join(lines) + "\n" if lines else "no points\n"
    counted = [(p, st) for p, st in s.state.point_stats.items() if st.hits or st.rewritten]
    if counted:
        out += "since attach (GDB removes its points at every stop):\n"
        for p, st in counted:
            line = f"  {p.kind.value} {p.addr:#x} hits={st.hits}"
            if st.evaluations:
                line += f" evaluations={st.evaluations} stops={st.stops} errors={st.errors}"
            if st.in_place:
                line += f" in_place={st.in_place}"
            if st.rewritten:
                line += f" rewritten={st.rewritten}"
            if st.last_error:
                line += f" (last: {st.last_error})"
            out += line + "\n"
    return out


def _hits(s: Session, point: DebugPoint) -> str:
    cond = s.state.conditions.get(point)
    return "" if cond is None else f" if {getattr(cond, 'description', 'a Python condition')}"


def _stats(s: Session, args: list[str]) -> str:
    """reinjection filter statistics (reported / reinjected / resumed)"""
    doc = {
        "filter": s.filter_stats().as_dict(),
        "set_guest_debug_calls": s.stats.set_guest_debug_calls,
        "injected": s.stats.injected,
        "stops_dropped": s.stats.stops_dropped,
        "executed_in_place": s.stats.executed_in_place,
    }
    return json.dumps(doc, sort_keys=True) + "\n"


def _policy(s: Session, args: list[str]) -> str:
    """the debug-facility ownership policy and what the guest had armed at attach"""
    saved = {k: v for d in s.saved_guest for k, v in d.items() if v}
    return f"policy {s.policy}; guest debug settings saved at attach: {saved or 'none'}\n"


def _catch(s: Session, args: list[str]) -> str:
    """catch on|off: stop before each guest-owned event is re-injected"""
    if args not in (["on"], ["off"]):
        raise InvalidRequest("usage: catch on|off")
    s.catch_guest_events = args == ["on"]
    return f"catch {'on' if s.catch_guest_events else 'off'}\n"


def _vcpus(s: Session, args: list[str]) -> str:
    """list the vCPUs and their pending reinjections"""
    out = []
    for p in s.ports:
        pending = f" pending {p.pending.exception}" if p.pending else ""
        out.append(f"{s.vcpu_name(p.index)} exits={p.exits}{pending}")
    return "\n".join(out) + "\n"


def _caps(s: Session, args: list[str]) -> str:
    """what this host delivers: slots, watch kinds, and what is refused and why"""
    return "".join(f"{key}: {value}\n" for key, value in s.caps.describe().items())


def _hwbreak(s: Session, args: list[str]) -> str:
    """[list] | ADDR | off ADDR: breakpoints at ADDR in a hardware slot (rewrites keep them)"""
    if args in ([], ["list"]):
        served = sorted(a for _, a in s.state.hw_served)
        if not served:
            return "no address is served by a hardware compare\n"
        return "".join(f"hwbreak {a:#x}\n" for a in served)
    if len(args) == 2 and args[0] == "off":
        addr = _address(args[1])
        with s.control.lock:
            s._require_stopped()
            hw_optin.opt_out(s.state, DEFAULT_SPACE, addr)
        return f"breakpoints at {addr:#x} are trap words again\n"
    if len(args) != 1:
        raise InvalidRequest("usage: hwbreak [list] | hwbreak ADDR | hwbreak off ADDR")
    addr = _address(args[0])
    with s.control.lock:
        s._require_stopped()
        hw_optin.opt_in(s.state, DEFAULT_SPACE, addr)  # NoFreeSlot: nothing changes
    return f"breakpoints at {addr:#x} are served by a hardware instruction compare\n"


def _rewrites(s: Session, args: list[str]) -> str:
    """[rearm|hw]: guest code rewritten under a breakpoint: re-arm its trap, or use a hw slot"""
    if args:
        if len(args) != 1 or args[0] not in rewrites.POLICIES:
            raise InvalidRequest(f"usage: rewrites [{'|'.join(rewrites.POLICIES)}]")
        s.state.rewrite_policy = args[0]
    return f"rewrites {s.state.rewrite_policy}\n"


def _address(text: str) -> int:
    try:
        addr = int(text, 0)
    except ValueError:
        raise InvalidRequest(f"not an address: {text!r} (hex 0x... or decimal)") from None
    if addr < 0:
        raise InvalidRequest("negative address")
    return addr


COMMANDS: dict[str, tuple[Callable[[Session, list[str]], str], bool]] = {
    "help": (_help, False),
    "points": (_points, False),
    "caps": (_caps, False),
    "stats": (_stats, False),
    "policy": (_policy, False),
    "catch": (_catch, True),
    "vcpus": (_vcpus, False),
    "hwbreak": (_hwbreak, True),
    "rewrites": (_rewrites, True),
}
_help.__doc__ = "this list"


def run_monitor(s: Session, command: str) -> str:
    words = command.split()
    if not words:
        return _help(s, [])
    entry = COMMANDS.get(words[0])
    if entry is None:
        raise InvalidRequest(f"unknown monitor command {words[0]!r}; try 'monitor help'")
    fn, takes_args = entry
    if words[1:] and not takes_args:
        raise InvalidRequest(f"monitor {words[0]} takes no arguments")
    return fn(s, words[1:])
