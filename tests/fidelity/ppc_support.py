"""Running generated programs on the emulated e500mc host without a debugger (test helper)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_DONE, EmulatedBookeVm
from guestdbg_booke.fidelity.generator import (
    COUNTS,
    ENTRY_FIELDS,
    ENTRY_SIZE,
    Layout,
    Program,
    generate,
)
from guestdbg_booke.fidelity.qemu_oracle import QEMU64, available

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "guests" / "build" / "fidelity"
no_qemu = pytest.mark.skipif(not available(), reason="no qemu-system-ppc")
no_qemu64 = pytest.mark.skipif(
    not available(QEMU64), reason="no qemu-system-ppc64 (the e5500/e6500 reference)"
)
CORES64 = ("e5500", "e6500")


@dataclass
class Finished:
    """One vCPU's area after the program reached ``done``."""

    counters: dict[str, int]
    log: list[dict[str, int]]
    raw: bytes


def built(seed: int, core: str = "e500mc", **options: int) -> tuple[Program, Path, Layout]:
    program = generate(seed, core=core, **options)
    elf = program.build(BUILD)
    return program, elf, program.layout(elf)


def run_free(elf: Path, layout: Layout, vcpus: int = 1, core: str = "e500mc") -> list[Finished]:
    """Every vCPU runs the program at once (a thread each) until it stores HOSTIO_DONE."""
    vm = EmulatedBookeVm(core, smp=vcpus)
    vm.load_elf(elf)
    errors: list[str] = []

    phys_addr = abi.layout().field("struct kvm_run", "mmio", "phys_addr")

    def drive(n: int) -> None:
        v = vm.vcpus[n]
        for _ in range(100):  # MMIO exits: the host-I/O map, then HOSTIO_DONE
            if v.run() == KVM_EXIT_MMIO and phys_addr.get(v.kvm_run) == HOSTIO_DONE:
                return
        errors.append(f"vCPU {n} did not reach done")

    threads = [threading.Thread(target=drive, args=(n,)) for n in range(vcpus)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return [finished(vm.read_phys(layout.area(n), layout.area_size), layout) for n in range(vcpus)]


def finished(raw: bytes, layout: Layout) -> Finished:
    def word(off: int) -> int:
        return int.from_bytes(raw[off : off + 4], "big")

    counters = {
        name: word(COUNTS + 4 * i) for i, name in enumerate(("program", "syscall", "other"))
    }
    entries = counters["program"] + counters["syscall"] + counters["other"]
    base = layout.log(0) - layout.area(0)
    log = [
        {f: word(base + n * ENTRY_SIZE + 4 * i) for i, f in enumerate(ENTRY_FIELDS)}
        for n in range(min(entries, layout.log_entries))
    ]
    return Finished(counters, log, raw)
