"""Trap words the guest (or the VMM) wrote over: found, re-armed over the new word, reported.

A software breakpoint is a word of guest memory; a guest that rewrites its code there (a loader
copying code, a JIT, self-modifying code) replaces it, and the breakpoint silently stops working.
A host with read-only memory slots can make the guest's stores to a trap page exit and apply
them keeping the trap. Linux BookE KVM has neither read-only slots nor a dirty log
(docs/reference/kvm-debug-abi.md §11), so there the best the kernel allows is to look:

* at every stop reported to the debugger (every vCPU parked, :meth:`.Session.wait_stop`),
  every inserted trap word is read back. One that no longer holds the trap instruction was
  rewritten: the word now there becomes the point's original (what reads show and a step over
  the point runs), the trap is written back over it, the point's ``rewritten`` count goes up
  and the stop carries a notice saying so. A rewrite between two stops still loses the hits
  until the next stop; the notice says how to keep them (``monitor hwbreak``), and with the
  ``monitor rewrites hw`` policy the point moves to an instruction compare at once
  (:mod:`.hw_optin`);
* after the VMM writes guest memory through its own mapping (virtio DMA, loading an image) and
  says so (:func:`memory_written`), the trap words in that range are re-armed the same way;
* when a trap comes back after a vCPU stepped over it, ``TrapWriter.rearm`` compares the word
  that stood in for it, and what it found replaced is reported here at the next stop.

A store of the trap's own bytes leaves nothing to find. A guest that wrote back the very word the
trap replaced still overwrote the trap (the memory is not the trap), and is reported. Points
sharing one trap word (a ``break`` and an ``hbreak`` served by a trap) are one word to check.
"""

from __future__ import annotations

from ..errors import NoFreeSlot, UnsupportedByArch
from ..points import SwEntry
from . import hw_optin
from .debug_state import DebugState

POLICIES = ("rearm", "hw")


def check_at_stop(state: DebugState) -> tuple[str, ...]:
    """Find, re-arm (or move to a compare) and describe every rewritten trap word. Call with
    every vCPU parked (nothing steps over a trap meanwhile) and the run-control lock held."""
    w = state.trap_writer
    notices, state.unreported = state.unreported, []
    out_words, w.replaced_while_out = w.replaced_while_out, []
    for entry, before in out_words:
        if entry.inserted:
            _share_original(state, entry, entry.original)
            notices.append(
                f"the code under the breakpoint at {entry.point.addr:#x} was rewritten while a "
                f"vCPU stepped over it (now {entry.original.hex()}, was {before.hex()}); "
                "re-armed over the new instruction"
            )
    if not state.points.sw and not state.points.hw_breaks:
        return tuple(notices)
    seen: set[int] = set()
    for entry in list(state.points.traps()):
        if not entry.inserted or entry.suspended or entry.gpa in seen:
            continue
        seen.add(entry.gpa)
        current = w.vm.read_phys(entry.gpa, w.size)
        if current != w.insn:
            notices.append(_rewritten(state, entry, current, "the guest", state.rewrite_policy))
    return tuple(notices)


def memory_written(state: DebugState, gpa: int, length: int) -> list[str]:
    """Re-arm the trap words in guest-physical ``[gpa, gpa+length)`` that a write of the VMM's
    replaced; the notices (the next reported stop carries them too). A trap word out of memory
    for a vCPU's step over it is left to that step's re-arm, which takes the new word itself.
    Call with the run-control lock held."""
    w = state.trap_writer
    notices = []
    seen: set[int] = set()
    for entry in list(state.points.traps()):
        if not entry.inserted or entry.suspended or entry.gpa in seen:
            continue
        if entry.gpa + w.size <= gpa or entry.gpa >= gpa + length:
            continue
        seen.add(entry.gpa)
        current = w.vm.read_phys(entry.gpa, w.size)
        if current != w.insn:
            notices.append(_rewritten(state, entry, current, "the VMM", "rearm"))
    state.unreported += notices
    return notices


def _share_original(state: DebugState, entry: SwEntry, word: bytes) -> list[SwEntry]:
    """Give every inserted entry on ``entry``'s trap word the same original; those entries."""
    sharing = [e for e in state.points.traps() if e.inserted and e.gpa == entry.gpa]
    for e in sharing:
        e.original = word
    return sharing


def _rewritten(state: DebugState, entry: SwEntry, current: bytes, who: str, policy: str) -> str:
    old = entry.original
    addr = entry.point.addr
    for e in _share_original(state, entry, current):
        stats = state.point_stats.get(e.point)
        if stats is not None:
            stats.rewritten += 1
    what = (
        f"{who} rewrote the code under the breakpoint at {addr:#x} "
        f"(now {current.hex()}, was {old.hex()})"
    )
    kept = ""
    space = entry.point.space
    if policy == "hw" and (space, addr) in state.points.sw:
        try:
            hw_optin.opt_in(state, space, addr)
        except (NoFreeSlot, UnsupportedByArch) as e:
            kept = f"; it stays a trap word (monitor rewrites hw): {e}"
        else:
            return (
                f"{what}; moved to a hardware instruction compare (monitor rewrites hw): no "
                "trap word is written there any more, so later rewrites cannot lose its hits"
            )
    state.trap_writer.vm.write_phys(entry.gpa, state.trap_writer.insn)
    if kept:
        return f"{what}; re-armed over the new instruction{kept}"
    why_not = hw_optin.why_not_possible(state)
    hint = (
        f"`monitor hwbreak {addr:#x}` keeps it in a hardware slot"
        if why_not is None
        else f"no hardware slot can keep it here: {why_not}"
    )
    return (
        f"{what}; re-armed over the new instruction. A rewrite between two stops loses the "
        f"hit: {hint}"
    )
