"""What the /dev/kvm layer costs per call, against the same ioctl made with Python's ``fcntl``.

Measured on this machine's real KVM with the x86-64 guest of the smoke test
(``tests/guests/x86/long_mode.S``), vCPU at CPL0:

* a single-step round trip: ``KvmVcpu.run()`` returning ``KVM_EXIT_DEBUG`` while stepping the
  guest's ``spin: jmp spin`` (every step lands on the same instruction, so nothing is reset);
* ``KvmVcpu.set_guest_debug()`` (the ioctl a debugger issues on every breakpoint change);
* ``KvmVcpu.get_regs()`` (the read a stop costs);

each also made with ``fcntl.ioctl`` on the same fd, so the ratio is the layer's own overhead.
Skips (prints why, exits 0) without a usable x86-64 /dev/kvm.

Last line: ``step_us=<median> set_guest_debug_us=<median> get_regs_us=<median>
step_raw_us=<median> set_guest_debug_raw_us=<median> get_regs_raw_us=<median>
step_ratio=<layer/raw>``.
"""

from __future__ import annotations

import fcntl
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from guestdbg import plugins
from guestdbg.kvm import constants as C
from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from guests.x86 import long_mode

ROUNDS = 40
PER_ROUND = 100


def medians_us(calls: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median over ``ROUNDS`` batches of the mean time of one call, in µs. The calls take turns
    within each round, so a burst of machine noise hits them all alike rather than one."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            t0 = time.perf_counter_ns()
            for _ in range(PER_ROUND):
                call()
            samples[name].append((time.perf_counter_ns() - t0) / PER_ROUND / 1000)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> None:
    layout = plugins.load().arches["x86"].layout()
    reason = None if machine_kvm_arch() == "x86_64" else "not an x86-64 machine"
    reason = reason or unusable_reason(layout)
    if reason:
        print(f"skipped: {reason}")
        return
    with tempfile.TemporaryDirectory() as tmp, Kvm(layout) as kvm:
        vm = kvm.create_vm()
        vm.add_memory(0, long_mode.RAM_SIZE)
        sym = long_mode.load(vm, long_mode.build(pathlib.Path(tmp)))
        vcpu = vm.create_vcpu()
        long_mode.enter_long_mode(vcpu, layout, sym)
        long_mode.start_at(vcpu, layout, sym, "spin")

        step = layout.new("struct kvm_guest_debug")
        control = layout.field("struct kvm_guest_debug", "control")
        control.put(step, C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
        step_bytes = bytes(step)
        vcpu.set_guest_debug(step_bytes)
        if vcpu.run() != C.KVM_EXIT_DEBUG:
            print("skipped: single-step does not exit with KVM_EXIT_DEBUG here")
            return

        def run_step() -> None:
            if vcpu.run() != C.KVM_EXIT_DEBUG:
                raise SystemExit("single-step stopped exiting with KVM_EXIT_DEBUG")

        nr = layout.ioctls
        fd = vcpu.fd
        regs_buf = bytearray(layout.sizeof("struct kvm_regs"))
        results = medians_us(
            {
                "step_us": run_step,
                "step_raw_us": lambda: fcntl.ioctl(fd, nr["KVM_RUN"], 0),
                "set_guest_debug_us": lambda: vcpu.set_guest_debug(step_bytes),
                "set_guest_debug_raw_us": lambda: fcntl.ioctl(
                    fd, nr["KVM_SET_GUEST_DEBUG"], step_bytes
                ),
                "get_regs_us": vcpu.get_regs,
                "get_regs_raw_us": lambda: fcntl.ioctl(fd, nr["KVM_GET_REGS"], regs_buf),
            }
        )
    for name, value in results.items():
        print(f"{name:>24}: {value:7.2f} µs")
    results["step_ratio"] = results["step_us"] / results["step_raw_us"]
    print(" ".join(f"{k}={v:.2f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
