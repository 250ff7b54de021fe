"""A kick (the signal a VMM sends a vCPU thread) stops the vCPU between two instructions: the
instruction at the PC has not run and everything before it has. Unicorn's asynchronous stop does
not guarantee that (it can stop inside a store's slow path with the PC on the store), so the
emulated host honours kicks only between count-limited slices of a free run."""

from __future__ import annotations

import random
import struct
import threading
from pathlib import Path

from guestdbg.kvm.constants import KVM_EXIT_INTR
from guestdbg_booke.emuhost import EmulatedBookeVm
from guestdbg_booke.guests import build

from .machine import BUILD, L, symbols

GUEST = Path(__file__).resolve().parents[1] / "e2e" / "guests" / "precise_stop.S"


def test_a_kick_stops_the_vcpu_at_an_instruction_boundary() -> None:
    elf = build(GUEST, BUILD)
    sym = symbols(elf)
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(elf)
    v = vm.vcpus[0]
    pc_f = L.field("struct kvm_regs", "pc")
    r4_f = L.field("struct kvm_regs", "gpr", 4)
    r5_f = L.field("struct kvm_regs", "gpr", 5)
    loop, hit, tail = sym["loop"], sym["hit"], sym["tail"]
    start = sym["_start"]
    expected = {
        # a kick that lands before the first slice (a loaded machine) stops on the prologue
        **{start + 4 * n: lambda r4, r5, count: r4 == r5 == count == 0 for n in range(4)},
        loop: lambda r4, r5, count: r4 == r5 == count,
        hit: lambda r4, r5, count: r4 == r5 + 1 and count == r4 - 1,
        tail: lambda r4, r5, count: r4 == r5 + 1 and count == r4,
        tail + 4: lambda r4, r5, count: r4 == r5 == count,
    }
    rng = random.Random(7)
    wrong = []
    for _ in range(60):
        t = threading.Timer(rng.uniform(0.0002, 0.003), v.kick)
        t.start()
        assert v.run() == KVM_EXIT_INTR
        t.join()
        regs = v.get_regs()
        pc, r4, r5 = pc_f.get(regs), r4_f.get(regs), r5_f.get(regs)
        (count,) = struct.unpack(">I", vm.read_phys(sym["count"], 4))
        if pc not in expected or not expected[pc](r4, r5, count):
            wrong.append((hex(pc), r4, r5, count))
    assert wrong == []
