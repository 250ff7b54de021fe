"""What keeping software breakpoints armed through guest code rewrites costs (issue 16).

On a host with read-only memory slots the session puts each guest page holding a trap word in a
read-only slot (``guestdbg.session.write_guard``), so every guest store to that page leaves
``KVM_RUN`` as ``KVM_EXIT_MMIO`` and is applied by guestdbg. Two figures, from the loop
``same_page_loop`` of ``tests/guests/x86/loader.S`` (a store to ``near_data``, a decrement, a
branch; ``near_data`` shares a page with ``near_code``, where the breakpoint goes):

* ``store_exit_us``: µs per guest store to a trap page: (time of the loop with a trap word on
  ``near_code`` - time without) / stores.
* ``same_page_slowdown``: how much slower the loop runs with the breakpoint than without.

Measured on this machine's ``/dev/kvm`` and on the emulated x86-64 host, in interleaved rounds
(medians of ROUNDS). On the emulated host through a :class:`~guestdbg.session.Session` (the
vCPU's port takes the exit, applies the store, runs on). On ``/dev/kvm`` through the same two
calls the port makes (``TrapPageGuard.store_at``, ``traps.apply_guest_store``) in a plain
``KVM_RUN`` loop, because this machine's kvm cannot deliver ``int3`` at CPL0 and a session here
refuses software breakpoints (docs/reference/this-machine-kvm.md); the port's own bookkeeping
adds its ``before_run``/``after_exit`` (a few µs, ``bench/kvm_exit_overhead.py``).

Last line: ``store_exit_us=<float> same_page_slowdown=<float>`` for ``/dev/kvm`` where it is
usable, else for the emulated host (the line before says which). No target: the figures say
what a guest that writes next to a breakpointed instruction pays, and why.
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from x86_debug_paths import LAYOUT, build, emulated, real_vm

from guestdbg.capabilities import DebugCapabilities
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm import constants as C
from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason
from guestdbg.points import DEFAULT_SPACE, DebugPoint, PointKind, PointTable
from guestdbg.session.session import Session
from guestdbg.session.traps import TrapWriter, apply_guest_store
from guestdbg.session.write_guard import TrapPageGuard
from guestdbg.vcpu import VmHandle
from guestdbg_x86 import boot

GUEST = pathlib.Path(__file__).resolve().parents[1] / "tests" / "guests" / "x86" / "loader.S"
ROUNDS = 5
STORES_EMULATED = 2000
STORES_KVM = 5000
INT3 = b"\xcc"


def start(vm: VmHandle, image: boot.GuestImage, stores: int) -> None:
    vcpu = vm.vcpus[0]
    boot.start_at(vcpu, LAYOUT, image["same_page_loop"], image["stack_top"])
    regs = vcpu.get_regs()
    LAYOUT.field("struct kvm_regs", "rcx").put(regs, stores)
    vcpu.set_regs(bytes(regs))


def _halt(index: int, reason: int, run: memoryview) -> bool:
    return False  # the loop ends with hlt: the session reports it as a HALT stop


def session_loop(vm: VmHandle, image: boot.GuestImage, armed: bool) -> float:
    """Seconds for STORES_EMULATED iterations through a session, with or without the trap."""
    start(vm, image, STORES_EMULATED)
    s = Session(vm, "x86", exit_handler=_halt)
    try:
        if armed:
            s.insert_point(DebugPoint(PointKind.SW_BREAK, image["near_code"], 1))
        t0 = time.perf_counter()
        s.resume({0: ResumeAction()})
        ev = s.wait_stop(120)
        seconds = time.perf_counter() - t0
        if ev is None or ev.reason.kind is not StopKind.HALT:
            sys.exit(f"the loop did not end at its hlt: {ev}")
        guard = s.state.guard
        if armed and (guard is None or guard.stores != STORES_EMULATED):
            sys.exit(f"expected {STORES_EMULATED} applied stores, got {guard and guard.stores}")
        s.detach()
    finally:
        s.close()
    return seconds


def kvm_loop(vm: VmHandle, image: boot.GuestImage, armed: bool, apply: bool = True) -> float:
    """Seconds for STORES_KVM iterations on /dev/kvm, the port's calls on each MMIO exit
    (``apply=False``: the exits alone, the stores dropped - the loop's control flow is in
    registers, so it runs the same - to tell the kernel's part from guestdbg's)."""
    start(vm, image, STORES_KVM)
    guard = TrapPageGuard.for_vm(vm)
    if guard is None:
        sys.exit("this /dev/kvm VM offers no read-only slots")
    table = PointTable(DebugCapabilities(hw_breakpoints=4, hw_watchpoints=4))
    entry = None
    if armed:
        table.insert(DebugPoint(PointKind.SW_BREAK, image["near_code"], 1))
        entry = table.trap_at(DEFAULT_SPACE, image["near_code"])
        assert entry is not None
        TrapWriter(vm, INT3).insert(vm.vcpus[0], entry)
        guard.want([entry.gpa])
        guard.apply()
    vcpu = vm.vcpus[0]
    run = vcpu.kvm_run
    stores = 0
    t0 = time.perf_counter()
    while (reason := vcpu.run()) == C.KVM_EXIT_MMIO:
        stores += 1
        if not apply:
            continue
        store = guard.store_at(run)
        if store is None:
            sys.exit("an MMIO exit outside the trap page")
        apply_guest_store(table, vm, *store, INT3)
    seconds = time.perf_counter() - t0
    if reason != C.KVM_EXIT_HLT or stores != (STORES_KVM if armed else 0):
        sys.exit(f"unexpected end: {C.exit_name(reason)} after {stores} stores")
    if entry is not None:
        TrapWriter(vm, INT3).remove(entry)
        guard.restore()
    return seconds


def interleaved(variants: dict[str, Callable[[], float]]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, measure in variants.items():
            samples[name].append(measure())
    return {name: statistics.median(v) for name, v in samples.items()}


def report(where: str, t: dict[str, float], stores: int) -> tuple[float, float]:
    per_store = (t["armed"] - t["bare"]) / stores * 1e6
    slowdown = t["armed"] / t["bare"]
    print(
        f"{where}: {stores} stores, loop without breakpoint {t['bare'] * 1e3:.2f} ms, with a trap "
        f"word on its page {t['armed'] * 1e3:.2f} ms: {per_store:.2f} µs per store, "
        f"slowdown {slowdown:.1f}x"
    )
    return per_store, slowdown


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        elf = build(pathlib.Path(tmp), GUEST)
        image = boot.read_image(elf)
        emu = emulated(elf)
        t = interleaved(
            {
                "bare": lambda: session_loop(emu, image, False),
                "armed": lambda: session_loop(emu, image, True),
            }
        )
        result = report("emulated x86-64 host (session)", t, STORES_EMULATED)
        why = (
            f"this machine is {machine_kvm_arch()}"
            if machine_kvm_arch() != "x86_64"
            else unusable_reason(LAYOUT)
        )
        if why is None:
            with Kvm(LAYOUT) as kvm:
                vm = real_vm(kvm, image)
                t = interleaved(
                    {"bare": lambda: kvm_loop(vm, image, False),
                     "armed": lambda: kvm_loop(vm, image, True),
                     "exits": lambda: kvm_loop(vm, image, True, apply=False)}
                )  # fmt: skip
                result = report("/dev/kvm (the port's calls)", t, STORES_KVM)
                kernel = (t["exits"] - t["bare"]) / STORES_KVM * 1e6
                print(
                    f"  of which the kernel's exit and re-entry {kernel:.2f} µs, guestdbg's "
                    f"decode and apply {result[0] - kernel:.2f} µs"
                )
            print("last line: /dev/kvm")
        else:
            print(f"/dev/kvm: skipped ({why}); last line: the emulated host")
        print(f"store_exit_us={result[0]:.2f} same_page_slowdown={result[1]:.1f}")


if __name__ == "__main__":
    main()
