"""A batch of breakpoint changes costs one KVM_SET_GUEST_DEBUG per vCPU, not one per change.

10,000 software breakpoints go into an 8-vCPU emulated e500mc VM through ``Session.insert_point``
(what GDB's ``Z0`` packets end in), then one resume runs every vCPU until the first breakpoint stops
them all. ``seconds`` covers the inserts plus that resume until all 8 vCPUs are parked again;
``set_guest_debug_calls`` counts the ioctls the session made (target: at most 8, one per vCPU,
applied lazily before its first KVM_RUN, so a vCPU that the first stop kicks before it ever entered
the guest needs none; QEMU makes one per vCPU per ``Z`` packet, docs/reference/peers.md §1.2).
Targets: at most 8 calls, under 0.5 s.

Each round uses a fresh VM; the last line is the median round. Before it, where one insert's time
goes, measured piece by piece on a fresh VM with the same calls the session makes: KVM_TRANSLATE,
the read of the original word, and the write of the trap word (on the emulated host that write
drops each vCPU's translated code for the word: 8 Unicorn cache invalidations), the rest being the
point table and session bookkeeping.
Last line: ``set_guest_debug_calls=<int> seconds=<float>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from elftools.elf.elffile import ELFFile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guestdbg.events import ResumeAction  # noqa: E402
from guestdbg.plugins import default_registry  # noqa: E402
from guestdbg.points import DebugPoint, PointKind  # noqa: E402
from guestdbg.session.session import Session  # noqa: E402
from guestdbg.vcpu import VmHandle  # noqa: E402
from guestdbg_booke.guests import build  # noqa: E402

BREAKPOINTS = 10_000
VCPUS = 8
ROUNDS = 3
STOP_TIMEOUT = 30.0


def sled_address(elf: Path) -> int:
    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return next(s["st_value"] for s in tab.iter_symbols() if s.name == "sled")  # type: ignore[union-attr]


def fresh_vm(elf: Path) -> VmHandle:
    return default_registry().emulated_host("e500mc").create_vm(elf, smp=VCPUS)


def one_round(elf: Path, sled: int) -> tuple[int, float, float, float]:
    """(set_guest_debug_calls, total seconds, insert seconds, resume-to-stop seconds)."""
    vm = fresh_vm(elf)
    s = Session(vm, "ppc_booke", "e500mc")
    points = [DebugPoint(PointKind.SW_BREAK, sled + 4 * n, 4) for n in range(BREAKPOINTS)]
    try:
        t0 = time.perf_counter()
        for p in points:
            s.insert_point(p)
        t1 = time.perf_counter()
        s.resume({i: ResumeAction() for i in range(VCPUS)})
        ev = s.wait_stop(STOP_TIMEOUT)
        t2 = time.perf_counter()
        if ev is None or ev.reason.pc != sled:
            raise SystemExit(f"expected a breakpoint stop at {sled:#x}, got {ev}")
        return s.stats.set_guest_debug_calls, t2 - t0, t1 - t0, t2 - t1
    finally:
        s.close()


def per_insert_parts(elf: Path, sled: int) -> dict[str, float]:
    """Microseconds per breakpoint for each KVM-level call an insert makes."""
    vm = fresh_vm(elf)
    v = vm.vcpus[0]
    addrs = [sled + 4 * n for n in range(BREAKPOINTS)]
    t0 = time.perf_counter()
    gpas = [v.translate(a) for a in addrs]
    t1 = time.perf_counter()
    words = [vm.read_phys(g, 4) for g in gpas if g is not None]
    t2 = time.perf_counter()
    for g, w in zip(gpas, words, strict=True):
        assert g is not None
        vm.write_phys(g, w)
    t3 = time.perf_counter()
    scale = 1e6 / BREAKPOINTS
    return {
        "translate_us": (t1 - t0) * scale,
        "read_phys_us": (t2 - t1) * scale,
        f"write_phys_with_{VCPUS}_invalidations_us": (t3 - t2) * scale,
    }


def main() -> None:
    elf = build(ROOT / "tests" / "guests" / "ppc" / "booke_nops.S", ROOT / "tests/guests/build/ppc")
    sled = sled_address(elf)
    rounds = []
    for n in range(ROUNDS):
        calls, total, inserts, resume = one_round(elf, sled)
        rounds.append((total, calls, inserts, resume))
        print(
            f"round {n}: inserts={inserts:.3f}s resume_to_stop={resume:.4f}s "
            f"total={total:.3f}s set_guest_debug_calls={calls}"
        )
    total, calls, inserts, _ = sorted(rounds)[len(rounds) // 2]
    parts = per_insert_parts(elf, sled)
    per_insert = inserts / BREAKPOINTS * 1e6
    parts["session_bookkeeping_us"] = per_insert - sum(parts.values())
    print(f"per_insert_us={per_insert:.1f} " + " ".join(f"{k}={v:.1f}" for k, v in parts.items()))
    print(f"set_guest_debug_calls={calls} seconds={total:.3f}")


if __name__ == "__main__":
    main()
