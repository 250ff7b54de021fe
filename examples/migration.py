"""Migrating a VM in the middle of a debug session, with a guest event still to deliver.

Run it::

    python examples/migration.py

A VMM migrates two things: its own VM state (RAM, registers, in-kernel state: here the
emulated e500mc host's snapshot) and guestdbg's debug state (``Session.save_state()``, a
versioned JSON document). Both are taken with the VM paused - every vCPU out of KVM_RUN - and
the destination restores both before any vCPU runs.

The source session is stopped at the moment guestdbg has judged the guest's own breakpoint word
(``catch_guest_events``) but not yet delivered it: the document carries that pending
reinjection, the destination delivers it before its first KVM_RUN, and the guest's handler runs
exactly once - not on the source, not twice. The software breakpoint's trap word and the
watchpoint carry over too: the destination stops at them in the next round.

Exit status: 0 when every check passed; 1 with one line saying what failed; 77 when the PowerPC
binutils are missing.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from e500mc_common import (
    EXIT_SKIPPED,
    ROUNDS,
    HostIo,
    build_guest,
    missing_tool,
    new_vm,
    read_u32,
)
from vmm_debug_loop import ExampleFailed

from guestdbg.demo.elf_info import symbols
from guestdbg.errors import GuestDebugError
from guestdbg.events import ResumeAction, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke.emuhost import EmulatedBookeVm

WAIT = 10.0


def run_to(s: Session, kind: StopKind, pc: int | None = None) -> None:
    """Continue vCPU 0 and wait for the next stop, which must be ``kind`` (at ``pc``)."""
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(WAIT)
    if ev is None:
        raise ExampleFailed(f"no stop within {WAIT:.0f} s (wanted {kind.value})")
    print(f"  stop: {ev.reason.kind.value} @{ev.reason.pc:#x}")
    if ev.reason.kind is not kind or (pc is not None and ev.reason.pc != pc):
        raise ExampleFailed(f"expected a {kind.value} stop, got {ev.reason}")


def summarize(doc: dict[str, Any]) -> None:
    """What the document holds (see core/guestdbg/session/migration.py)."""
    print(f"  format={doc['format']} version={doc['version']} arch={doc['arch']} "
          f"core={doc['core']} policy={doc['policy']} attached={doc['attached']}")  # fmt: skip
    for p in doc["points"]:
        trap = p.get("trap")
        word = f" trap word at gpa {trap['gpa']:#x} replaced {trap['original']}" if trap else ""
        print(f"  point {p['kind']} {p['addr']:#x}/{p['length']} refs={p['refs']}{word}")
    for v in doc["vcpus"]:
        pending = v["pending"]
        if pending is not None:
            exc = pending["exception"]
            payload = " ".join(f"{k}={n:#x}" for k, n in pending["payload"].items())
            print(f"  vCPU {v['index']} pending reinjection: {exc['space']}:{exc['number']} "
                  f"@{pending['pc']:#x} {payload}")  # fmt: skip
        print(f"  vCPU {v['index']} guest debug settings saved at attach: {v['saved_guest']}")


def migrate() -> None:
    elf = build_guest()
    sym = symbols(elf)
    sw = DebugPoint(PointKind.SW_BREAK, sym["sw_target"], 4)
    watch = DebugPoint(PointKind.WATCH_WRITE, sym["counter"], 4)

    print("== source: a session mid-debug, stopped before a guest event is delivered")
    src_vm = new_vm(elf)
    if not isinstance(src_vm, EmulatedBookeVm):  # the VMM knows its own VM type
        raise ExampleFailed(f"the e500mc host made a {type(src_vm).__name__}")
    src = Session(src_vm, "e500mc", exit_handler=HostIo(src_vm).handle, catch_guest_events=True)
    try:
        src.insert_point(sw)
        src.insert_point(watch)
        run_to(src, StopKind.SW_BREAK, sym["sw_target"])
        run_to(src, StopKind.WATCH, sym["store_counter"])
        run_to(src, StopKind.GUEST_EVENT, sym["own_break"])  # judged the guest's, not delivered
        # The VM is paused (all vCPUs stopped): save the debug state, then the VM state.
        doc_text = json.dumps(src.save_state())
        snapshot = copy.deepcopy(src_vm.snapshot())  # stands for the VMM's own migration stream
    finally:
        src.close()  # the source stops here for good
    if read_u32(src_vm, sym["handled"]) != 0:
        raise ExampleFailed("the guest's handler ran on the source")
    print(f"save_state(): {len(doc_text)} bytes of JSON")
    doc = json.loads(doc_text)
    summarize(doc)

    print("== destination: a new VM from the snapshot, Session.restore(vm, doc)")
    dst_vm = EmulatedBookeVm.from_snapshot(snapshot)
    device = HostIo(dst_vm)
    dst = Session.restore(dst_vm, doc, exit_handler=device.handle)
    try:
        dst.catch_guest_events = False  # the document carried True; this debugger wants it off
        insn = read_u32(dst_vm, sw.addr)
        shown = int.from_bytes(dst.read_memory(0, sw.addr, 4), "big")
        print(f"  guest memory at sw_target holds {insn:#010x} (the trap word); the debugger "
              f"reads {shown:#010x} (the original)")  # fmt: skip
        if insn == shown:
            raise ExampleFailed("the trap word did not travel with guest memory")
        print("continue: the pending reinjection is delivered before the first KVM_RUN")
        run_to(dst, StopKind.SW_BREAK, sym["sw_target"])  # round 2: the point carried over
        handled = read_u32(dst_vm, sym["handled"])
        print(f"  handled={handled} (the guest's handler ran once, on the destination)")
        if handled != 1:
            raise ExampleFailed(f"the guest's handler ran {handled} times, not once")
        run_to(dst, StopKind.WATCH, sym["store_counter"])  # the watchpoint carried over
        print("detach: trap words restored, the guest runs to its end")
        dst.detach()
        ev = dst.wait_stop(WAIT)  # the device model stops the VM at the guest's "done"
        if ev is None or ev.reason.kind is not StopKind.HALT:
            raise ExampleFailed(f"the guest did not finish after detach: {ev}")
        if device.done != ROUNDS or read_u32(dst_vm, sw.addr) != shown:
            raise ExampleFailed(f"handled={device.done} at the end, or a trap word was left")
        print(f"  handled={device.done} after {ROUNDS} rounds: each guest event exactly once")
    finally:
        dst.close()


def main() -> int:
    reason = missing_tool()
    if reason is not None:
        print(f"SKIPPED: {reason}")
        return EXIT_SKIPPED
    try:
        migrate()
    except GuestDebugError as e:  # MigrationError says which field of the document is wrong
        print(f"FAILED: {e}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
