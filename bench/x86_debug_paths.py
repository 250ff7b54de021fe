"""What the x86 plugin's debug paths cost, on the emulated x86-64 host and on real /dev/kvm.

Guest: ``tests/guests/x86/loop.S``. Printed (medians over interleaved rounds, so machine noise
hits every variant alike):

* emulated free run, Minsn/s, plain and with an execute breakpoint and a write watchpoint armed
  but never hit: the ratio shows what arming DR0-3 costs when nothing matches (ranged hooks and
  page protection instead of a per-instruction hook);
* a single-step round trip (KVM_RUN + decode) through the plugin, per step, on both hosts;
* a hardware breakpoint hit and resume through a Session (filter, report, step-over), per hit;
* the guest's own int3 handed back through a Session (exit, decode, filter, reinject), per
  event, against the same int3 taken by the guest with no debugger (emulated host only: kvm_pvm
  cannot run int3 at CPL0).

Last line: ``emu_free_ratio=... emu_step_us=... kvm_step_us=... emu_hit_us=... kvm_hit_us=...
emu_reinject_us=... emu_reinject_ratio=...`` (``nan`` where a host is unavailable).
"""

from __future__ import annotations

import math
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from guestdbg import plugins
from guestdbg.arch import VcpuDebugRequest
from guestdbg.events import ResumeAction
from guestdbg.kvm import constants as C
from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg.vcpu import VmHandle
from guestdbg_x86 import abi, boot

GUEST = pathlib.Path(__file__).resolve().parents[1] / "tests" / "guests" / "x86" / "loop.S"
RAM = 4 << 20
ROUNDS = 5
FREE_ITERATIONS = 200_000  # 3 instructions each
STEPS = 1000
HITS = 300
INT3S = 1000
LAYOUT = abi.layout()


def build(out: pathlib.Path, guest: pathlib.Path = GUEST) -> pathlib.Path:
    """``guest`` (a ``tests/guests/x86`` source) assembled and linked as the x86 boot expects."""
    obj, elf = out / f"{guest.stem}.o", out / f"{guest.stem}.elf"
    subprocess.run(["gcc", "-c", "-o", obj, guest], check=True)
    subprocess.run(
        ["ld", "-N", "-Ttext=0x10000", "-e", "start", "--build-id=none",
         "--no-warn-rwx-segments", "-o", elf, obj],
        check=True,
    )  # fmt: skip
    return elf


def emulated(elf: pathlib.Path) -> VmHandle:
    vm: VmHandle = plugins.load().emulated_host("x86_64-unicorn").create_vm(elf, ram_size=RAM)
    return vm


def start(vm: VmHandle, image: boot.GuestImage, label: str, rcx: int) -> None:
    vcpu = vm.vcpus[0]
    boot.start_at(vcpu, LAYOUT, image[label], image["stack_top"])
    regs = vcpu.get_regs()
    LAYOUT.field("struct kvm_regs", "rcx").put(regs, rcx)
    vcpu.set_regs(bytes(regs))


def ops_for(vm: VmHandle) -> object:
    reg = plugins.load()
    info = reg.arches["x86"]
    return reg.vcpu_debug(VcpuDebugRequest(info, info.core(None), vm, vm.vcpus[0]))


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def free_run(vm: VmHandle, image: boot.GuestImage, armed: bool) -> float:
    """Seconds for FREE_ITERATIONS loop iterations."""
    ops = ops_for(vm)
    points = [
        DebugPoint(PointKind.HW_BREAK, image["never"]),
        DebugPoint(PointKind.WATCH_WRITE, image["unrelated"], 8),
    ]
    vm.vcpus[0].set_guest_debug(ops.encode_guest_debug(points if armed else [], False, False))  # type: ignore[attr-defined]
    start(vm, image, "count_loop", FREE_ITERATIONS)
    seconds = timed(lambda: _expect(vm.vcpus[0].run(), C.KVM_EXIT_HLT))
    return seconds


def _expect(reason: int, want: int) -> None:
    if reason != want:
        raise SystemExit(f"unexpected exit {C.EXIT_REASON_NAMES.get(reason, reason)}")


def step_us(vm: VmHandle, image: boot.GuestImage) -> float:
    ops = ops_for(vm)
    vcpu = vm.vcpus[0]
    start(vm, image, "count_loop", 1 << 40)
    vcpu.set_guest_debug(ops.encode_guest_debug([], True, False))  # type: ignore[attr-defined]

    def steps() -> None:
        for _ in range(STEPS):
            _expect(vcpu.run(), C.KVM_EXIT_DEBUG)
            ops.decode_exit(vcpu.kvm_run)  # type: ignore[attr-defined]

    return timed(steps) / STEPS * 1e6


def hit_us(vm: VmHandle, image: boot.GuestImage) -> float:
    start(vm, image, "count_loop", HITS + 10)
    s = Session(vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.HW_BREAK, image["count_loop"] + 7))  # the dec

        def hits() -> None:
            for _ in range(HITS):
                s.resume({0: ResumeAction()})
                ev = s.wait_stop(10)
                assert ev is not None and ev.reason.pc == image["count_loop"] + 7

        return timed(hits) / HITS * 1e6
    finally:
        s.close()


def reinject_us(vm: VmHandle, image: boot.GuestImage, debugger: bool) -> float:
    start(vm, image, "int3_loop", INT3S)
    if not debugger:
        return timed(lambda: _expect(vm.vcpus[0].run(), C.KVM_EXIT_HLT)) / INT3S * 1e6
    s = Session(vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, image["never"]))  # USE_SW_BP on

        def run() -> None:
            s.resume({0: ResumeAction()})
            ev = s.wait_stop(30)
            assert ev is not None and s.filter_stats().reinjected == INT3S

        return timed(run) / INT3S * 1e6
    finally:
        s.close()


def real_vm(kvm: Kvm, image: boot.GuestImage) -> VmHandle:
    vm = kvm.create_vm()
    vm.add_memory(0, RAM)
    vm.create_vcpu()
    boot.boot(vm, image, RAM)
    return vm


def interleaved(variants: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median per variant over ROUNDS rounds in which every variant runs once, in turn."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, measure in variants.items():
            samples[name].append(measure())
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        elf = build(pathlib.Path(tmp))
        image = boot.read_image(elf)
        emu = interleaved(
            {
                "free": lambda: free_run(emulated(elf), image, armed=False),
                "free_armed": lambda: free_run(emulated(elf), image, armed=True),
                "step": lambda: step_us(emulated(elf), image),
                "hit": lambda: hit_us(emulated(elf), image),
                "reinject": lambda: reinject_us(emulated(elf), image, debugger=True),
                "native": lambda: reinject_us(emulated(elf), image, debugger=False),
            }
        )
        insns = 3 * FREE_ITERATIONS
        plain, armed = insns / emu["free"] / 1e6, insns / emu["free_armed"] / 1e6
        print(f"emulated free run: {plain:.1f} Minsn/s, {armed:.1f} with DR0-3 armed, unhit")
        print(f"emulated: step {emu['step']:.1f} us, hw breakpoint hit+resume {emu['hit']:.1f} us")
        print(
            f"emulated: guest int3 through the session {emu['reinject']:.1f} us, "
            f"without a debugger {emu['native']:.1f} us"
        )
        kvm = {"step": math.nan, "hit": math.nan}
        reason = None if machine_kvm_arch() == "x86_64" else "not an x86-64 machine"
        reason = reason or unusable_reason(LAYOUT)
        if reason:
            print(f"real /dev/kvm skipped: {reason}")
        else:
            with Kvm(LAYOUT) as k:
                kvm = interleaved(
                    {
                        "step": lambda: step_us(real_vm(k, image), image),
                        "hit": lambda: hit_us(real_vm(k, image), image),
                    }
                )
            print(f"real /dev/kvm: step {kvm['step']:.1f} us, hit+resume {kvm['hit']:.1f} us")
        print(
            f"emu_free_ratio={armed / plain:.2f} emu_step_us={emu['step']:.1f} "
            f"kvm_step_us={kvm['step']:.1f} emu_hit_us={emu['hit']:.1f} "
            f"kvm_hit_us={kvm['hit']:.1f} emu_reinject_us={emu['reinject']:.1f} "
            f"emu_reinject_ratio={emu['reinject'] / emu['native']:.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
