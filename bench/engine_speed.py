"""Speed of the emulated e500mc host: free-running guest code with nothing armed, with two IACs
and two DACs armed where the guest never goes, and the cost of the exits a debugger lives on.

No global per-instruction hook exists in the engine: an armed IAC is a code hook limited to its
address and an armed DAC is a protected page, so armed-but-idle points should cost nothing
(target: armed_to_raw >= 0.8). Each configuration runs several times, interleaved, best taken.
Last line: ``raw_minsn_s=<float> armed_minsn_s=<float> armed_to_raw=<float>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guestdbg.demo.elf_info import symbols  # noqa: E402
from guestdbg.kvm.constants import (  # noqa: E402
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg_booke import abi, regs  # noqa: E402
from guestdbg_booke.emuhost import EmulatedBookeVm  # noqa: E402
from guestdbg_booke.guests import build  # noqa: E402

ITERATIONS = 2_000_000
INSNS_PER_ITERATION = 6
ROUNDS = 5
HITS = 3000
L = abi.layout()
GD = "struct kvm_guest_debug"


def guest_debug(control: int, bps: list[tuple[int, int]]) -> bytes:
    buf = bytearray(L.sizeof(GD))
    L.field(GD, "control").put(buf, control)
    for n, (addr, typ) in enumerate(bps):
        L.field(GD, "arch", "bp", n, "addr").put(buf, addr)
        L.field(GD, "arch", "bp", n, "type").put(buf, typ)
    return bytes(buf)


def loop_vm(elf: Path, sym: dict[str, int], armed: bool) -> EmulatedBookeVm:
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(elf)
    vm.write_phys(sym["iterations"], ITERATIONS.to_bytes(4, "big"))
    v = vm.vcpus[0]
    if armed:
        bp, ww, wr = (abi.KVMPPC_DEBUG_BREAKPOINT, abi.KVMPPC_DEBUG_WATCH_WRITE,
                      abi.KVMPPC_DEBUG_WATCH_READ)  # fmt: skip
        points = [(sym["far_code"], bp), (sym["far_code"] + 4, bp),
                  (sym["far_data"], ww), (sym["far_data"] + 4, wr | ww)]  # fmt: skip
        v.set_guest_debug(guest_debug(KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, points))
        v.set_regs(bytes(v.get_regs()))  # force MSR[DE], as a VMM's register write does
    return vm


def free_run(elf: Path, sym: dict[str, int], armed: bool) -> float:
    """Million guest instructions per second over the whole loop."""
    vm = loop_vm(elf, sym, armed)
    v = vm.vcpus[0]
    t = time.perf_counter()
    reason = v.run()
    dt = time.perf_counter() - t
    assert reason == KVM_EXIT_MMIO, reason
    return ITERATIONS * INSNS_PER_ITERATION / dt / 1e6


def hit_cost(elf: Path, sym: dict[str, int], how: str) -> float:
    """Microseconds per KVM_RUN that ends in a debug exit: an IAC on the loop, a software
    breakpoint word in it, or a single step."""
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(elf)
    v = vm.vcpus[0]
    loop = sym["loop"] + 8
    if how == "iac":
        v.set_guest_debug(guest_debug(KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP,
                                      [(loop, abi.KVMPPC_DEBUG_BREAKPOINT)]))  # fmt: skip
    elif how == "swbp":
        vm.write_phys(loop, regs.KVMPPC_INST_SW_BREAKPOINT.to_bytes(4, "big"))
        v.set_guest_debug(guest_debug(KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP, []))
    else:
        v.set_guest_debug(guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, []))
    v.set_regs(bytes(v.get_regs()))
    assert v.run() == KVM_EXIT_DEBUG
    t = time.perf_counter()
    for _ in range(HITS):
        v.run()
    return (time.perf_counter() - t) / HITS * 1e6


def main() -> None:
    elf = build(ROOT / "tests" / "guests" / "ppc" / "bench_loop.S", ROOT / "tests/guests/build/ppc")
    sym = symbols(elf)
    raw, armed = [], []
    for _ in range(ROUNDS):
        raw.append(free_run(elf, sym, armed=False))
        armed.append(free_run(elf, sym, armed=True))
    for how in ("iac", "swbp", "step"):
        print(f"{how}_exit_us={min(hit_cost(elf, sym, how) for _ in range(3)):.1f}")
    best_raw, best_armed = max(raw), max(armed)
    print(
        f"raw_minsn_s={best_raw:.2f} armed_minsn_s={best_armed:.2f} "
        f"armed_to_raw={best_armed / best_raw:.3f}"
    )


if __name__ == "__main__":
    main()
