"""A minimal VMM on the emulated e500mc KVM host, debugging its guest with guestdbg.

Run it::

    python examples/emulated_e500mc_vmm.py                 # then attach the printed gdb line
    python examples/emulated_e500mc_vmm.py --gdb-selftest  # gdb-multiarch drives it by itself

The same structure as examples/kvm_x86_vmm.py, on a host that offers everything BookE KVM does:

Part 1 - the VMM's own KVM_RUN loop (examples/vmm_debug_loop.py) with guestdbg judging each
KVM_EXIT_DEBUG: a hardware breakpoint (IAC), a software breakpoint (a trap word the VMM puts in
guest memory), a write watchpoint (DAC, which fires before the store), and the guest's own
breakpoint word, which guestdbg hands back (Reinject) so the guest's handler runs.

Part 2 - the same guest under a :class:`guestdbg.session.Session` served to gdb-multiarch by
:class:`guestdbg.gdb.server.GdbServer`: hbreak, break, watch and continue, while the guest's own
breakpoint words keep reaching the guest's handler.

Exit status: 0 when every check passed; 1 with one line saying what failed; 77 when a tool the
example needs is missing.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import threading
from pathlib import Path

from e500mc_common import (
    EXIT_SKIPPED,
    ROUNDS,
    HostIo,
    build_guest,
    missing_tool,
    new_vm,
    read_u32,
)
from serve_gdb import gdb_command, gdb_failure, run_gdb_batch, wait_for_detach
from vmm_debug_loop import ExampleFailed, OwnRunLoop

from guestdbg.demo.elf_info import symbols
from guestdbg.errors import GuestDebugError
from guestdbg.events import StopKind, StopReason
from guestdbg.gdb.server import GdbServer
from guestdbg.plugins import default_registry
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session


def expect(stop: StopReason | None, kind: StopKind, pc: int) -> None:
    if stop is None or (stop.kind, stop.pc) != (kind, pc):
        raise ExampleFailed(f"expected a {kind.value} stop at {pc:#x}, got {stop}")


# -- part 1: the VMM's own run loop ----------------------------------------------------------


def own_loop(elf: Path, sym: dict[str, int]) -> None:
    print("== part 1: the VMM's own KVM_RUN loop hands each KVM_EXIT_DEBUG to guestdbg")
    vm = new_vm(elf)
    vcpu = vm.vcpus[0]
    device = HostIo(vm)
    loop = OwnRunLoop(default_registry(), "e500mc", vm, vcpu, device.handle)
    hw = DebugPoint(PointKind.HW_BREAK, sym["hw_target"], 4)
    sw = DebugPoint(PointKind.SW_BREAK, sym["sw_target"], 4)
    watch = DebugPoint(PointKind.WATCH_WRITE, sym["counter"], 4)
    for p in (hw, sw, watch):
        loop.insert(p)  # IAC1; a trap word (KVM_REG_PPC_DEBUG_INST) in guest memory; DAC1
    print(f"debugger: hbreak *{hw.addr:#x}, break *{sw.addr:#x}, watch counter "
          f"({watch.addr:#x}), continue")  # fmt: skip
    expect(loop.run(), StopKind.HW_BREAK, sym["hw_target"])
    print("debugger: continue (the VMM steps over the IAC with it disarmed, then runs)")
    loop.step_over(hw, for_debugger=False)
    expect(loop.run(), StopKind.SW_BREAK, sym["sw_target"])
    print("debugger: continue (the original word back for one step, then the trap again)")
    loop.step_over(sw, for_debugger=False)
    stop = loop.run()
    expect(stop, StopKind.WATCH, sym["store_counter"])  # before the store (e500 DAC)
    print("debugger: continue (stepping the store over its own DAC; then the guest runs its "
          "own breakpoint word)")  # fmt: skip
    loop.step_over(watch, for_debugger=False)
    expect(loop.run(), StopKind.HW_BREAK, sym["hw_target"])
    handled = read_u32(vm, sym["handled"])
    if handled != 1:
        raise ExampleFailed(f"the guest's handler ran {handled} times in round 1, not once")
    print(f"host reads handled={handled}: the guest's handler ran once, the debugger saw nothing")
    print("debugger: delete all, continue")
    loop.step_over(hw, for_debugger=False)
    for p in (hw, sw, watch):
        loop.remove(p)
    if loop.run() is not None:
        raise ExampleFailed("a debug stop came after every point was removed")
    stats = loop.filter.stats
    print(f"guestdbg filter: reported={stats.reported} reinjected={stats.reinjected} "
          f"resumed={stats.resumed} {dict(sorted(stats.by_reason.items()))}")  # fmt: skip
    if device.done != ROUNDS or device.checkpoints != list(range(1, ROUNDS + 1)):
        raise ExampleFailed(
            f"the guest ended with handled={device.done}, checkpoints {device.checkpoints}"
        )


# -- part 2: a Session runs the vCPU, GDB attaches ---------------------------------------------


def serve(elf: Path, address: str | tuple[str, int], selftest: bool) -> None:
    print("== part 2: a Session runs the vCPU; the VMM's device model is its exit_handler")
    vm = new_vm(elf)
    device = HostIo(vm)
    session = Session(vm, "e500mc", exit_handler=device.handle)
    try:
        detached = threading.Event()
        with GdbServer(session, address, on_detach=detached.set) as server:
            server.start()
            bound = server.bound_address
            where = bound if isinstance(bound, str) else f"{bound[0]}:{bound[1]}"
            print(f"GDB stub listening on {where}")
            if selftest:
                run_gdb(elf, where)
            else:
                print("attach with: " + shlex.join(gdb_command(where, *gdb_setup(elf))))
                print("(detach or quit GDB to end; Ctrl-C here stops the example)")
                wait_for_detach(detached)
        stats = session.filter_stats()
        print(f"guestdbg filter: reported={stats.reported} reinjected={stats.reinjected} "
              f"step_overs={stats.step_overs} {dict(sorted(stats.by_reason.items()))}")  # fmt: skip
        if selftest and stats.reinjected < 1:
            raise ExampleFailed("the guest's own breakpoint word was never handed back")
    finally:
        session.close()


def run_gdb(elf: Path, where: str) -> None:
    commands = (
        "set confirm off",
        "hbreak *hw_target",
        "break *sw_target",
        "watch *(int *)&counter",
        "continue",
        "continue",
        "continue",
        "continue",
        "print *(int *)&handled",
        "delete",
        "continue",
        "print *(int *)&handled",
        "print *(int *)&counter",
        "detach",
    )
    out = run_gdb_batch(gdb_command(where, *gdb_setup(elf), commands=commands))
    text = out.stdout
    stops = [
        m.group(1) or "watch " + m.group(2)
        for m in re.finditer(r"^(?:Breakpoint (\d+), |Old value = (\d+))", text, re.M)
    ]
    want_stops = ["1", "2", "watch 0", "1"]  # hbreak, break, watch (counter 0 -> 1), hbreak
    values = [int(v) for v in re.findall(r"^\$\d+ = (\d+)", text, re.M)]
    if out.returncode != 0 or stops != want_stops or values != [1, ROUNDS, ROUNDS]:
        raise gdb_failure(out, f"stops={stops}, values={values}")
    if "detached" not in text:
        raise ExampleFailed("gdb-multiarch did not detach")


def gdb_setup(elf: Path) -> tuple[str, ...]:
    return ("set endian big", f"file {elf}")  # a target description carries no byte order


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gdb-selftest", action="store_true", help="run gdb-multiarch against it")
    p.add_argument("--gdb", default="127.0.0.1:0", help="loopback HOST:PORT (0: any free port)")
    p.add_argument("--unix", help="serve GDB on this Unix socket instead (mode 0600)")
    args = p.parse_args(argv)
    reason = missing_tool(*(("gdb-multiarch",) if args.gdb_selftest else ()))
    if reason is not None:
        print(f"SKIPPED: {reason}")
        return EXIT_SKIPPED
    host, _, port = args.gdb.rpartition(":")
    address: str | tuple[str, int] = args.unix or (host, int(port))
    try:
        elf = build_guest()
        sym = symbols(elf)
        own_loop(elf, sym)
        serve(elf, address, args.gdb_selftest)
    except GuestDebugError as e:
        print(f"FAILED: {e}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
