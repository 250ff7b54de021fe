"""Running :mod:`.execute_cases` both ways: the x86 plugin's in-place executor and a reference
(the real CPU through ``/dev/kvm`` with one single step, or Unicorn's x86 for one instruction).

The plugin's side is the whole of :class:`guestdbg_x86.in_place.InPlace` on the reference's own
vCPU - registers, sregs, events and the guest's debug registers read from it, the code fetched
through the guest's page tables - so what is compared is what a session would write. A refused
case is not run (refusing is always allowed); an accepted one is run and all sixteen GPRs, RIP
and RFLAGS must be equal.
"""

from __future__ import annotations

import random
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from guestdbg.kvm import constants as C
from guestdbg_x86 import boot
from guestdbg_x86.guest_dregs import GuestDebugRegs
from guestdbg_x86.in_place import InPlace

from .execute_cases import OTHER_FLAGS, Case, case
from .machines import Machine

REGS = struct.Struct("<18Q")
NAMES = (
    *["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp"],
    *(f"r{n}" for n in range(8, 16)),
    "rip",
    "rflags",
)
CODE = 0x40000
"""Where most cases run: inside the first 2 MiB page of the guests' identity map."""
PLACES = ((0.9, CODE, 0xF00), (0.06, CODE + 0xFF1, 15), (0.04, 0x1FFFF1, 15))
"""(share, first pc, spread): most cases anywhere in a page, some across a 4 KiB boundary,
some across the 2 MiB one (two walks)."""
ACCESSED = 0x20
GUEST = "in_place"
TABLE_ENTRIES = (boot.BOOT_TABLES, boot.BOOT_TABLES + 0x1000, boot.BOOT_TABLES + 0x2000,
                 boot.BOOT_TABLES + 0x2008)  # fmt: skip
"""The loader's PML4, PDPT and PD entries that map the cases' code (two 2 MiB pages)."""


@dataclass
class Outcome:
    cases: int = 0
    accepted: int = 0
    mismatches: list[str] = field(default_factory=list)
    texts: dict[str, int] = field(default_factory=dict)


def prepare(m: Machine) -> None:
    """Map the second 2 MiB page too and set the accessed bits the CPU would have set: a guest
    that has run, whose walks change nothing (``code_fetch``)."""
    for addr in TABLE_ENTRIES:
        entry = int.from_bytes(m.vm.read_phys(addr, 8), "little")
        m.vm.write_phys(addr, (entry | ACCESSED).to_bytes(8, "little"))


def place(rng: random.Random) -> int:
    r = rng.random()
    for share, first, spread in PLACES:
        if r < share:
            return first + rng.randrange(spread)
        r -= share
    return CODE


def plugin(m: Machine) -> InPlace:
    return InPlace(m.vm, m.vcpu, GuestDebugRegs(m.vcpu), lambda: False)


def run_kvm(
    m: Machine,
    seed: int,
    accepted: int,
    limit: int,
    other_flags: tuple[int, ...] = OTHER_FLAGS,
    skip: Callable[[bytes], bool] | None = None,
) -> Outcome:
    """Cases from ``seed`` until ``accepted`` were accepted (or ``limit`` drawn), each accepted
    one single-stepped on ``m``'s vCPU (a real /dev/kvm)."""
    prepare(m)
    m.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    ex = plugin(m)
    vcpu, read = m.vcpu, m.vm.read_phys
    out = Outcome()
    rng = random.Random(seed)
    stalled = threading.Event()

    def kick() -> None:
        stalled.set()
        vcpu.kick()

    timer = threading.Timer(120.0, kick)
    timer.start()
    try:
        while out.accepted < accepted and out.cases < limit:
            c, pc = case(rng, other_flags), place(rng)
            out.cases += 1
            if skip is not None and skip(c.code):
                continue  # a known difference of the reference, tested on its own
            m.vm.write_phys(pc, c.code)
            start = REGS.pack(*c.gprs, pc, c.rflags)
            vcpu.set_regs(start)
            if not ex(pc, read):
                continue
            out.accepted += 1
            out.texts[ex.why] = out.texts.get(ex.why, 0) + 1
            mine = REGS.unpack(vcpu.get_regs())
            vcpu.set_regs(start)
            reason = vcpu.run()
            assert not stalled.is_set(), "the guest hung"
            cpu = REGS.unpack(vcpu.get_regs())
            if reason != C.KVM_EXIT_DEBUG:
                cpu = (*cpu[:16], -reason, cpu[17])
            _compare(out, c, pc, ex.why, mine, cpu)
    finally:
        timer.cancel()
    return out


def _compare(
    out: Outcome, c: Case, pc: int, text: str, mine: tuple[int, ...], ref: tuple[int, ...]
) -> None:
    if mine == ref:
        return
    diffs = [
        f"{NAMES[i]} plugin {mine[i]:#x} reference {ref[i]:#x}"
        for i in range(18)
        if mine[i] != ref[i]
    ]
    out.mismatches.append(
        f"{c.code.hex()} at {pc:#x} ({text}), rflags {c.rflags:#x}: {'; '.join(diffs)}"
    )


Reference = Callable[[Case, int], tuple[int, ...] | None]
