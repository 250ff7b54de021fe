"""``execute_in_place``'s instruction subset (:mod:`guestdbg_booke.execute`) against Unicorn's
PowerPC (QEMU TCG), one real single step per case.

Why: an instruction the plugin carries out itself is never seen by the CPU, so a wrong carry or
a wrong branch target would silently corrupt the guest. Each case is a random instruction word -
drawn from the subset, or a near miss (one bit of a subset word flipped: reserved bits, the
OE/Rc/L/AA/LK variants; or its primary or extended opcode a little off: the neighbouring
instructions) - with random register values biased towards the edges (0, ±1, the sign
boundary). The plugin's function decides; a refused
case needs nothing more (the CPU would step it). An accepted one is run on the emulated host the
way a VMM would run it: the word written into guest RAM, the registers with KVM_SET_REGS (so
XER's SO/OV/CA go through the host's own register path), KVM_SET_GUEST_DEBUG single-step,
KVM_RUN, KVM_GET_REGS. Every register of ``struct kvm_regs`` must then equal the plugin's result
(and MSR, SRR0, SRR1 their old values: no interrupt was taken), with the run ended by the
step's debug exit.

Refused words are never stepped: a near miss may be a store to a random address, which could
overwrite a later case's word in the scratch area.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from guestdbg.guest_build import cache_dir
from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP
from guestdbg.plugins import default_registry

from ..emuhost.board import DEFAULT_RAM_SIZE
from ..execute import XER_DEFINED, Regs, execute
from ..guests.build import PACKAGE_DIR, build

SCRATCH = 0x00800000
"""Where the cases' words go: guest RAM inside the boot mapping (TLB1 entry 0, 64 MiB), far
from the loaded image at 1 MiB."""
BATCH = 1024
"""Words written with one KVM-side memory write; each case runs at its own address."""
M32 = 0xFFFFFFFF
_EDGES = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0xFFFFFFFE, 31, 32, 33, 63)


@dataclass(frozen=True)
class Mismatch:
    word: int
    before: Regs
    plugin: Regs
    host: Regs | None
    detail: str

    def __str__(self) -> str:
        return (
            f"word {self.word:#010x}: {self.detail}\n  before {self.before}\n"
            f"  plugin {self.plugin}\n  host   {self.host}"
        )


@dataclass
class DiffTally:
    cases: int = 0
    accepted: int = 0
    """Accepted and compared with the host."""
    refused: int = 0
    excluded_unmapped_target: int = 0
    """Accepted branches to an address outside guest RAM, not stepped: the emulated host does
    not end such a step at the target the way the hardware does (``docs/fidelity.md``,
    "Stepping a branch to an unmapped address")."""
    mismatches: list[Mismatch] = field(default_factory=list)

    def add(self, other: DiffTally) -> None:
        self.cases += other.cases
        self.accepted += other.accepted
        self.refused += other.refused
        self.excluded_unmapped_target += other.excluded_unmapped_target
        self.mismatches.extend(other.mismatches)


# -- the instructions ----------------------------------------------------------------------------


def _r(rng: random.Random) -> int:
    return rng.randrange(32)


def _xo(op: int, xo: int) -> Callable[[random.Random], int]:
    def make(rng: random.Random) -> int:
        rb = _r(rng) if xo not in (202, 234, 200, 232, 104) else 0
        oe = rng.randrange(2) if xo not in (75, 11) else 0
        return (
            (op << 26)
            | (_r(rng) << 21)
            | (_r(rng) << 16)
            | (rb << 11)
            | (oe << 10)
            | (xo << 1)
            | rng.randrange(2)
        )

    return make


def _x(xo: int, rb_zero: bool = False, rc: bool = True) -> Callable[[random.Random], int]:
    def make(rng: random.Random) -> int:
        rb = 0 if rb_zero else _r(rng)
        low = rng.randrange(2) if rc else 0
        return (31 << 26) | (_r(rng) << 21) | (_r(rng) << 16) | (rb << 11) | (xo << 1) | low

    return make


def _d(op: int) -> Callable[[random.Random], int]:
    return lambda rng: (op << 26) | (_r(rng) << 21) | (_r(rng) << 16) | _imm(rng)


def _imm(rng: random.Random) -> int:
    return rng.choice((0, 1, 0x7FFF, 0x8000, 0xFFFF, rng.randrange(0x10000)))


def _m(op: int) -> Callable[[random.Random], int]:
    return lambda rng: (op << 26) | (rng.getrandbits(25) << 1) | rng.randrange(2)


def _cmp(op: int, xo: int | None) -> Callable[[random.Random], int]:
    def make(rng: random.Random) -> int:
        head = (op << 26) | (rng.randrange(8) << 23) | (_r(rng) << 16)
        return head | (_imm(rng) if xo is None else (_r(rng) << 11) | (xo << 1))

    return make


_BO = (0, 2, 4, 5, 6, 7, 8, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 24, 25, 26, 27)


def _bc(rng: random.Random) -> int:
    bd = rng.choice((0, 4, 8, 0xFFFC, rng.randrange(0x10000) & ~3))
    return (16 << 26) | (rng.choice(_BO) << 21) | (_r(rng) << 16) | bd | rng.randrange(4)


def _b(rng: random.Random) -> int:
    li = rng.choice((0, 4, 0x03FFFFFC, rng.getrandbits(26) & ~3))
    return (18 << 26) | li | rng.randrange(4)


def _bclr(xo: int) -> Callable[[random.Random], int]:
    def make(rng: random.Random) -> int:
        bo = rng.choice([b for b in _BO if xo == 16 or b & 4])
        return (19 << 26) | (bo << 21) | (_r(rng) << 16) | (xo << 1) | rng.randrange(2)

    return make


def _spr(spr: int, xo: int) -> Callable[[random.Random], int]:
    field_ = ((spr & 31) << 5) | (spr >> 5)
    return lambda rng: (31 << 26) | (_r(rng) << 21) | (field_ << 11) | (xo << 1)


def _crlogic(xo: int) -> Callable[[random.Random], int]:
    return lambda rng: (19 << 26) | (_r(rng) << 21) | (_r(rng) << 16) | (_r(rng) << 11) | (xo << 1)


TEMPLATES: dict[str, Callable[[random.Random], int]] = {
    **{
        name: _xo(31, xo)
        for name, xo in {
            "add": 266,
            "addc": 10,
            "adde": 138,
            "addze": 202,
            "addme": 234,
            "subf": 40,
            "subfc": 8,
            "subfe": 136,
            "subfze": 200,
            "subfme": 232,
            "neg": 104,
            "mullw": 235,
            "mulhw": 75,
            "mulhwu": 11,
            "divw": 491,
            "divwu": 459,
        }.items()
    },
    **{
        name: _d(op)
        for name, op in {
            "addi": 14,
            "addis": 15,
            "addic": 12,
            "addic.": 13,
            "subfic": 8,
            "mulli": 7,
            "andi.": 28,
            "andis.": 29,
            "ori": 24,
            "oris": 25,
            "xori": 26,
            "xoris": 27,
        }.items()
    },
    **{
        name: _x(xo)
        for name, xo in {
            "and": 28,
            "or": 444,
            "xor": 316,
            "nand": 476,
            "nor": 124,
            "andc": 60,
            "orc": 412,
            "eqv": 284,
            "slw": 24,
            "srw": 536,
            "sraw": 792,
            "srawi": 824,
        }.items()
    },
    "extsb": _x(954, rb_zero=True),
    "extsh": _x(922, rb_zero=True),
    "cntlzw": _x(26, rb_zero=True),
    "rlwimi": _m(20),
    "rlwinm": _m(21),
    "rlwnm": _m(23),
    "cmpi": _cmp(11, None),
    "cmpli": _cmp(10, None),
    "cmp": _cmp(31, 0),
    "cmpl": _cmp(31, 32),
    "mflr": _spr(8, 339),
    "mfctr": _spr(9, 339),
    "mfxer": _spr(1, 339),
    "mtlr": _spr(8, 467),
    "mtctr": _spr(9, 467),
    "mtxer": _spr(1, 467),
    "mfcr": lambda rng: (31 << 26) | (_r(rng) << 21) | (19 << 1),
    "mtcrf": lambda rng: (31 << 26) | (_r(rng) << 21) | (rng.randrange(256) << 12) | (144 << 1),
    **{
        name: _crlogic(xo)
        for name, xo in {
            "crand": 257,
            "cror": 449,
            "crxor": 193,
            "crnand": 225,
            "crnor": 33,
            "creqv": 289,
            "crandc": 129,
            "crorc": 417,
        }.items()
    },
    "mcrf": lambda rng: (19 << 26) | (rng.randrange(8) << 23) | (rng.randrange(8) << 18),
    "isel": lambda rng: (
        (31 << 26)
        | (_r(rng) << 21)
        | (_r(rng) << 16)
        | (_r(rng) << 11)
        | (_r(rng) << 6)
        | (15 << 1)
    ),
    "b": _b,
    "bc": _bc,
    "bclr": _bclr(16),
    "bcctr": _bclr(528),
}
"""One random word of each instruction of the subset (every field random where the form
allows, reserved fields zero)."""
_NAMES = tuple(TEMPLATES)


def random_word(rng: random.Random, near_miss: float = 0.3) -> int:
    """A word of the subset, or with probability ``near_miss`` a near miss of one: a random bit
    flipped (half of them), the primary opcode one off, or the 10-bit extended opcode of a
    primary-31/19 word a little off."""
    word = TEMPLATES[rng.choice(_NAMES)](rng)
    if rng.random() >= near_miss:
        return word
    kind = rng.random()
    if kind < 0.5:
        return word ^ (1 << rng.randrange(32))
    if kind < 0.75 or word >> 26 not in (19, 31):
        op = ((word >> 26) + rng.choice((-1, 1))) & 63
        return (word & 0x03FFFFFF) | (op << 26)
    xo = (((word >> 1) & 0x3FF) + rng.choice((-2, -1, 1, 2))) & 0x3FF
    return (word & ~(0x3FF << 1)) | (xo << 1)


def _value(rng: random.Random) -> int:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(_EDGES)
    if pick < 0.4:
        return rng.randrange(-64, 64) & M32
    return rng.getrandbits(32)


def random_regs(rng: random.Random, pc: int) -> Regs:
    """Registers biased to the edges; XER mostly within its defined bits (other bits make the
    plugin refuse everything, so they come only now and then)."""
    xer = rng.getrandbits(32) & XER_DEFINED
    if rng.random() < 0.02:
        xer |= 1 << rng.randrange(7, 29)
    ctr = rng.choice((0, 1, 2, rng.getrandbits(32), _value(rng)))
    return Regs(
        tuple(_value(rng) for _ in range(32)),
        rng.getrandbits(32),
        xer,
        rng.getrandbits(32) if rng.random() < 0.5 else _value(rng),
        ctr,
        pc,
    )


def cases(seed: int, count: int) -> Iterator[tuple[int, Regs]]:
    """``count`` seeded (word, registers) cases; the PCs run through the scratch area."""
    rng = random.Random(seed)
    for n in range(count):
        yield random_word(rng), random_regs(rng, SCRATCH + 4 * (n % BATCH))


# -- the host ------------------------------------------------------------------------------------

_KVM_REGS = struct.Struct(">49Q")
"""``struct kvm_regs``: pc, cr, ctr, lr, xer, msr, srr0, srr1, pid, sprg0-7, gpr[32]
(``abi.CDEF``; checked against the layout in ``StepHost``)."""


class StepHost:
    """One vCPU of the emulated ``core`` host, single-stepping one word per case."""

    def __init__(self, core: str) -> None:
        elf = build(PACKAGE_DIR / "demo.S", cache_dir("booke-execute-diff"))
        self.vm = default_registry().emulated_host(core).create_vm(str(elf))
        self.vcpu = self.vm.vcpus[0]
        lay = self.vm.layout
        if (
            lay.sizeof("struct kvm_regs") != _KVM_REGS.size
            or lay.offsetof("struct kvm_regs", "gpr") != 17 * 8
        ):
            raise AssertionError("struct kvm_regs is not the 49 __u64 this module packs")
        gd = bytearray(lay.sizeof("struct kvm_guest_debug"))
        lay.field("struct kvm_guest_debug", "control").put(
            gd, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
        )
        self.vcpu.set_guest_debug(bytes(gd))
        self.vcpu.set_regs(bytes(self.vcpu.get_regs()))  # the MSR write that makes MSR[DE] stick
        self.base = list(_KVM_REGS.unpack(self.vcpu.get_regs()))
        """The boot registers: MSR, SRR0/1, PID and SPRGs of every case."""
        self.ram_end = DEFAULT_RAM_SIZE
        """create_vm's RAM, all of it inside the boot mapping."""

    def step(self, r: Regs) -> tuple[int, list[int]]:
        """(exit reason, kvm_regs after) of one step from ``r`` (the word is in memory)."""
        values = self.base[:]
        values[0:5] = (r.pc, r.cr, r.ctr, r.lr, r.xer)
        values[17:49] = r.gpr
        self.vcpu.set_regs(_KVM_REGS.pack(*values))
        reason = self.vcpu.run()
        return reason, list(_KVM_REGS.unpack(self.vcpu.get_regs()))

    def check(self, batch: list[tuple[int, Regs]], tally: DiffTally) -> None:
        """Decide each case with the plugin; step and compare the accepted ones."""
        decided = [(w, r, execute(w, r)) for w, r in batch]
        accepted = [(w, r, out) for w, r, out in decided if out is not None]
        tally.cases += len(batch)
        tally.refused += len(batch) - len(accepted)
        stepped = [(w, r, out) for w, r, out in accepted if out.pc < self.ram_end]
        tally.excluded_unmapped_target += len(accepted) - len(stepped)
        tally.accepted += len(stepped)
        accepted = stepped
        if not accepted:
            return
        lo = min(r.pc for _, r, _ in accepted)
        hi = max(r.pc for _, r, _ in accepted) + 4
        image = bytearray(hi - lo)
        for w, r, _ in accepted:
            struct.pack_into(">I", image, r.pc - lo, w)
        self.vm.write_phys(lo, bytes(image))
        for w, r, out in accepted:
            assert out is not None
            reason, after = self.step(r)
            host = Regs(tuple(after[17:49]), after[1], after[4], after[3], after[2], after[0])
            detail = ""
            if reason != KVM_EXIT_DEBUG:
                detail = f"KVM_RUN ended with exit {reason}, not the step's KVM_EXIT_DEBUG"
            elif after[5:8] != self.base[5:8]:
                detail = f"MSR/SRR0/SRR1 changed to {[hex(v) for v in after[5:8]]}: an interrupt"
            elif host != out:
                detail = "registers differ"
            if detail:
                tally.mismatches.append(Mismatch(w, r, out, host, detail))


def run(core: str, seed: int, count: int) -> DiffTally:
    """``count`` seeded cases on a fresh ``core`` host."""
    host = StepHost(core)
    tally = DiffTally()
    batch: list[tuple[int, Regs]] = []
    for case in cases(seed, count):
        batch.append(case)
        if len(batch) == BATCH:
            host.check(batch, tally)
            batch = []
    if batch:
        host.check(batch, tally)
    return tally
