"""What a breakpoint whose condition is false costs on the emulated e500mc host, and where the
emulated kernel's part of it goes.

The guest is ``bench/guests/bp_loop.S``, with a software breakpoint on ``hit`` (a ``stw``, the
default) or, with ``--at loop``, on ``loop`` (an ``addi``, which the BookE plugin carries out in
place: one KVM_SET_REGS per false hit instead of the step below; ``--no-execute-in-place`` takes
that member away from the plugin so the same point is stepped, for comparison). Each instruction
runs once per iteration. Two measurements, in alternating rounds (the machine is shared), medians
taken:

* **session**: a :class:`~guestdbg.session.Session` with a Python condition that is false on
  all but one hit in ``--hits``; ``us_per_false_hit`` is the wall time per evaluation from the
  resume to the stop. Per hit the session makes the ioctls a real kernel needs: KVM_RUN ending
  at the trap, the trap word taken out (``write_phys``), KVM_SET_GUEST_DEBUG with single-step,
  KVM_RUN for one instruction, the trap word back, KVM_SET_GUEST_DEBUG without step, KVM_RUN on.
* **ioctls**: the same six calls made straight on the emulated VM and vCPU (no session), each
  timed: the emulated kernel's own cost per call, which is what this benchmark watches (the
  session's part is measured by ``bench/kvm_exit_overhead.py`` and ``bench/vs_qemu.py``).
* **floor** (``--at loop`` only): the four calls an in-place pass cannot do without, made
  straight on the emulated host - KVM_RUN to the trap, KVM_GET_REGS, KVM_TRANSLATE with a read
  of the word, KVM_SET_REGS with the ``addi`` done - as ``in_place_floor_us``. No session can
  pass a false hit on this host in less; ``bench/vs_qemu.py``'s ``cond_ratio`` is bounded by it
  (20 times QEMU's rate there needs about 36 us per evaluation, and the floor measured 37-43 us
  on 2026-12-04).

Measured on a shared 2-core machine under other load (runs vary with it; medians of 7
alternating runs of the code before and after issue 15, "a lighter hit path"):
``us_per_false_hit`` 107 before, 78 after; the six ioctls 72 us before, 54 after, of which
KVM_RUN to the trap 25 and 23, the one-instruction KVM_RUN 31 and 19, each
KVM_SET_GUEST_DEBUG 4 and 2, each trap-word write 4 and 4. Most of what is left of the two
KVM_RUNs is Unicorn's own run: the trap word changes twice per hit, so the blocks around it are
translated again twice per hit, as they must be.

At ``loop`` with and without the in-place pass (shared 2-core machine, other benchmarks
running; 3 alternating runs each, each the median of 5 rounds): 48.6, 51.8, 48.4 us per false
hit in place against 57.6, 52.4, 65.3 stepped; two more such sets gave 47.9, 53.9, 49.7 against
57.7, 54.9, 57.1 and 52.5, 49.8, 59.7 against 57.1, 80.9, 55.6. The gain
is small on this host because its register ioctls are nearly as dear as its KVM_RUN: measured
per in-place hit (perf_counter around each call, 10,000 hits), KVM_GET_REGS 7.6 us (XER comes
through an ``mfxer`` stub run in Unicorn after every guest run), the ``fetch`` of the word
through the session's trap-shadowing view 6.3 us (KVM_TRANSLATE and a memory read), the
decode 2.5 us, KVM_SET_REGS 7.5 us: about 24 us in place against the 21 us of the five ioctls a
step adds (untrap, two KVM_SET_GUEST_DEBUG, a one-instruction KVM_RUN of 12.8 us, retrap) plus
the session's handling of the step's own exit (about 9 us). On a real kernel the two register
ioctls are plain copies while the step costs a guest entry and a debug interrupt.

Since the emulated host reads XER where Unicorn keeps it (``emuhost/xer_flags.py``, no stub run)
the floor's KVM_GET_REGS is 3.6 us: three alternating pairs of runs on 2026-12-04 gave 44.9,
61.6, 45.2 us per false hit in place against 56.7, 54.2, 66.4 stepped, with
``in_place_floor_us`` 24.2-26.1 (KVM_RUN to the trap 10.9-15, KVM_GET_REGS 3.6, the fetch 2.8,
KVM_SET_REGS 7.3); with KVM_SET_REGS taking the low words on a 32-bit host, 23.9-26.6 (KVM_SET_REGS
5.8-6.4). The session's own part of an in-place hit, about 20 us, is as large as the
floor.

Last line: ``us_per_false_hit=<float> ioctl_us=<float>`` followed by the per-call medians,
``in_place=<int>``, the false hits of the last session round carried out in place, and with
``--at loop`` ``in_place_floor_us=<float>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guestdbg.demo.elf_info import symbols  # noqa: E402
from guestdbg.events import ResumeAction  # noqa: E402
from guestdbg.kvm.constants import (  # noqa: E402
    KVM_EXIT_DEBUG,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg.plugins import default_registry  # noqa: E402
from guestdbg.points import DebugPoint, PointKind  # noqa: E402
from guestdbg.session.session import Session  # noqa: E402
from guestdbg.vcpu import VcpuHandle, VmHandle  # noqa: E402
from guestdbg_booke import abi  # noqa: E402
from guestdbg_booke.debugops import BookeVcpuDebug  # noqa: E402
from guestdbg_booke.guests import build  # noqa: E402

GUEST = ROOT / "bench" / "guests" / "bp_loop.S"
BUILD = Path("/tmp/guestdbg-bench-false-hit")
CALLS = ("run_to_trap", "untrap", "debug_step", "run_step", "retrap", "debug_on")
IN_PLACE_CALLS = ("run_to_trap", "get_regs", "fetch", "set_regs")


def session_round(elf: Path, hits: int, at: str) -> tuple[float, int]:
    """(µs per false hit through a Session, false hits carried out in place)."""
    sym = symbols(elf)
    vm = default_registry().emulated_host("e500mc").create_vm(str(elf))
    s = Session(vm, "e500mc")
    evals = [0]

    def cond(_view: object) -> bool:
        evals[0] += 1
        return evals[0] % hits == 0

    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, sym[at], 4), cond)
        t0 = time.perf_counter()
        s.resume({0: ResumeAction()})
        if s.wait_stop(120) is None:
            raise SystemExit("false_hit: the true hit never came")
        spent = time.perf_counter() - t0
        return spent / evals[0] * 1e6, s.state.stats.executed_in_place
    finally:
        s.close()


@dataclass
class ArmedGuest:
    """The guest on a fresh emulated e500mc VM with the host's trap word at one address and
    guest debugging on (software breakpoints), as a session leaves it armed."""

    vm: VmHandle
    vcpu: VcpuHandle
    sym: dict[str, int]
    at: int
    original: bytes
    """The guest's word under the trap."""
    trap: bytes

    def guest_debug(self, flags: int) -> bytes:
        lay = self.vm.layout
        buf = bytearray(lay.sizeof("struct kvm_guest_debug"))
        lay.field("struct kvm_guest_debug", "control").put(buf, flags)
        return bytes(buf)


ARMED = KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP


def armed_guest(elf: Path, at: str) -> ArmedGuest:
    sym = symbols(elf)
    vm = default_registry().emulated_host("e500mc").create_vm(str(elf))
    vcpu = vm.vcpus[0]
    addr = sym[at]
    g = ArmedGuest(
        vm,
        vcpu,
        sym,
        addr,
        vm.read_phys(addr, 4),
        vcpu.get_one_reg(abi.KVM_REG_PPC_DEBUG_INST).to_bytes(4, "big"),
    )
    vcpu.set_guest_debug(g.guest_debug(ARMED))
    vcpu.set_regs(bytes(vcpu.get_regs()))  # the MSR write that makes MSR[DE] stick
    vm.write_phys(addr, g.trap)
    return g


def timed(
    names: tuple[str, ...], calls: Sequence[Callable[[], object]], runs: set[int], hits: int
) -> dict[str, float]:
    """µs per call of each of ``calls``, made in order ``hits`` times; those at ``runs`` are
    KVM_RUNs that must end in KVM_EXIT_DEBUG."""
    spent = [0] * len(calls)
    clock = time.perf_counter_ns
    for _ in range(hits):
        for n, call in enumerate(calls):
            t0 = clock()
            reason = call()
            spent[n] += clock() - t0
            if n in runs and reason != KVM_EXIT_DEBUG:
                raise SystemExit(f"false_hit: KVM_RUN returned {reason}, not KVM_EXIT_DEBUG")
    return {name: t / hits / 1000 for name, t in zip(names, spent, strict=True)}


def ioctl_round(elf: Path, hits: int, at: str) -> dict[str, float]:
    """µs per call of each of a stepped false hit's ioctls, made straight on the emulated
    host."""
    g = armed_guest(elf, at)
    vm, vcpu, addr = g.vm, g.vcpu, g.at
    on = g.guest_debug(ARMED)
    step = g.guest_debug(ARMED | KVM_GUESTDBG_SINGLESTEP)
    calls = (
        vcpu.run,
        lambda: vm.write_phys(addr, g.original),
        lambda: vcpu.set_guest_debug(step),
        vcpu.run,
        lambda: vm.write_phys(addr, g.trap),
        lambda: vcpu.set_guest_debug(on),
    )
    return timed(CALLS, calls, {0, 3}, hits)


def in_place_round(elf: Path, hits: int) -> dict[str, float]:
    """µs per call of what an in-place false hit at ``loop`` cannot do without, made straight
    on the emulated host: KVM_RUN to the trap, KVM_GET_REGS, KVM_TRANSLATE and a read of the
    word under the trap (the original ``addi``, as the session's view shows it), KVM_SET_REGS
    with the ``addi`` carried out. The floor of the session's in-place pass on this host: what
    is left above it is the session's (exit decode, filter, condition, decode and execution)."""
    g = armed_guest(elf, "loop")
    vm, vcpu, lay = g.vm, g.vcpu, g.vm.layout
    word = int.from_bytes(g.original, "big")
    if word >> 26 != 14 or (word >> 16) & 31 == 0:
        raise SystemExit(f"false_hit: loop is not an addi rD,rA,SIMM with rA != 0: {word:#010x}")
    rt, ra, simm = (word >> 21) & 31, (word >> 16) & 31, ((word & 0xFFFF) ^ 0x8000) - 0x8000
    pc_field = lay.field("struct kvm_regs", "pc")
    rt_field, ra_field = (lay.field("struct kvm_regs", "gpr", n) for n in (rt, ra))
    regs = bytearray()

    def get_regs() -> None:
        nonlocal regs
        regs = vcpu.get_regs()

    def fetch() -> None:
        gpa = vcpu.translate(pc_field.get(regs))
        if gpa is None or vm.read_phys(gpa, 4) != g.trap:
            raise SystemExit("false_hit: the trap word is not where the vCPU stopped")

    def set_regs() -> None:
        rt_field.put(regs, (ra_field.get(regs) + simm) & 0xFFFFFFFF)
        pc_field.put(regs, pc_field.get(regs) + 4)
        vcpu.set_regs(bytes(regs))

    per_call = timed(IN_PLACE_CALLS, (vcpu.run, get_regs, fetch, set_regs), {0}, hits)
    counted = int.from_bytes(vm.read_phys(g.sym["count"], 4), "big")
    if abs(counted - hits) > 1:
        raise SystemExit(f"false_hit: the guest counted {counted} iterations for {hits} hits")
    return per_call


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--hits", type=int, default=20000)
    p.add_argument("--at", choices=("loop", "hit"), default="hit")
    p.add_argument("--no-execute-in-place", action="store_true")
    args = p.parse_args()
    if args.no_execute_in_place:
        # The session looks the optional member up with getattr: without it, every false hit
        # is stepped (this process only).
        del BookeVcpuDebug.execute_in_place
    elf = build(GUEST, BUILD)
    per_hit: list[float] = []
    in_place = 0
    per_call: dict[str, list[float]] = {name: [] for name in CALLS}
    floor_call: dict[str, list[float]] = {name: [] for name in IN_PLACE_CALLS}
    floor = args.at == "loop" and not args.no_execute_in_place
    for r in range(args.rounds):
        order = ["session", "ioctls", *(["floor"] if floor else [])]
        for what in order if r % 2 == 0 else reversed(order):
            if what == "session":
                us, in_place = session_round(elf, args.hits, args.at)
                per_hit.append(us)
            elif what == "ioctls":
                for name, us in ioctl_round(elf, args.hits, args.at).items():
                    per_call[name].append(us)
            else:
                for name, us in in_place_round(elf, args.hits).items():
                    floor_call[name].append(us)
        print(f"round {r + 1}: {per_hit[-1]:.1f} us per false hit", flush=True)
    medians = {name: statistics.median(v) for name, v in per_call.items()}
    print("a stepped false hit's ioctls:")
    for name, us in medians.items():
        print(f"  {name:12s} {us:6.2f} us")
    floor_text = ""
    if floor:
        floor_medians = {name: statistics.median(v) for name, v in floor_call.items()}
        print("an in-place false hit's ioctls (the floor of the pass on this host):")
        for name, us in floor_medians.items():
            print(f"  {name:12s} {us:6.2f} us")
        floor_text = f" in_place_floor_us={sum(floor_medians.values()):.1f}"
    calls = " ".join(f"{name}_us={us:.2f}" for name, us in medians.items())
    print(
        f"us_per_false_hit={statistics.median(per_hit):.1f} "
        f"ioctl_us={sum(medians.values()):.1f} {calls} in_place={in_place}{floor_text}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
