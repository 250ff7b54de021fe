"""The instruction mix of the random programs: one e500mc instruction per line, each tagged.

A program's body is a tree of blocks (straight-line instructions, forward branches, bounded
``bdnz`` loops, problem-state segments entered with the guest's own ``rfi`` and left with
``sc``) drawn from a seeded ``random.Random``. Every emitted instruction is one 4-byte word, so
its address is its index times four from the body's start; each carries its *kind*: ``ordinary``
(completes without an interrupt, so a debugger may stop on it) or the interrupt it raises
(``trap``, ``sc``, ``illegal``, ``priv``, ``swbp``), and an upper bound of how often it runs
(loop trip counts), which sizes the handlers' log.

Register conventions (the handlers and the memory forms rely on them):

* r2 = this vCPU's data area, r3 = its log cursor, r4 = the handlers' scratch (0 outside
  them), r5/r6 = base and index of the update and indexed memory forms. Random code never
  writes r2-r6; ``lmw`` starts at r20 or above, so it cannot either.
* Every other GPR is a random destination and a source; r4 and r6 are sources too. Nothing a
  program computes depends on which vCPU runs it (no address register, no PIR, as a source).

The 64-bit variant (``Emitter(wide=True)``, for e5500 and e6500) runs the same blocks in 64-bit
mode (MSR[CM]) and adds the 64-bit instructions: doubleword loads and stores, 64-bit rotates,
shifts, multiplies, divides, compares and traps, and full 64-bit constants. There ``lis`` would
sign-extend a value with bit 31 set into the upper word, so the wide emitter builds such values
(XER, addresses, MSR images) with ``li``; ``oris``; ``ori`` instead. The 32-bit emitter's output
(and its random draws) are unchanged.

Nothing here produces an architecturally undefined result: divisors are forced into 1..0x7FFF
(no division by zero, no 0x80000000 / -1), update forms never name rA = 0 or rA = rD, ``lmw``
never loads its own base, every access is naturally aligned and inside the data area, and XER
is only written with SO/OV/CA and the byte count (its reserved bits stay 0).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

ORDINARY = "ordinary"
TRAP = "trap"
SC = "sc"
ILLEGAL = "illegal"
PRIV = "priv"
SWBP = "swbp"
RAISING = (TRAP, SC, ILLEGAL, PRIV, SWBP)
"""What an instruction that does not simply complete raises (all but ``sc`` are program
interrupts; ``sc`` is the system call interrupt)."""

KVMPPC_INST_SW_BREAKPOINT = 0x00DDDD00
"""The word KVM BookE reports in KVM_REG_PPC_DEBUG_INST: the guest's own copy of it is an
illegal instruction the debugger must hand back to the guest."""

BASE, LOG, HSCRATCH, PTR, IDX = 2, 3, 4, 5, 6
DEST: tuple[int, ...] = (0, 1, *range(7, 32))
SRC: tuple[int, ...] = (*DEST, HSCRATCH, IDX)
"""Not r2, r3, r5: they hold this vCPU's addresses, and a value must not depend on the vCPU."""
ADDR_DEST = DEST[1:]
"""Registers that may hold a built address: ``addi rX, rX, sym@l`` reads rA = 0 as zero."""
DATA_SIZE = 256
"""Bytes of this vCPU's data area the random loads and stores use."""
MSR_PR = 0x4000
SPRN_SRR0, SPRN_SRR1 = 0x01A, 0x01B

MSR_EE, MSR_ME = 0x8000, 0x1000
SPRN_MAS0, SPRN_MAS1, SPRN_MAS2, SPRN_MAS3, SPRN_MAS6, SPRN_MAS7 = 624, 625, 626, 627, 630, 944
STORAGE_SPRS = (
    26, 27,  # SRR0, SRR1
    58, 59,  # CSRR0, CSRR1
    61, 62,  # DEAR, ESR
    48,  # PID
    *range(272, 280),  # SPRG0-7 (SPRG4-7 by their supervisor write numbers)
    604, 605,  # SPRG8, SPRG9
    256,  # USPRG0
    570, 571, 574, 575,  # MCSRR0/1, DSRR0/1
    SPRN_MAS1, SPRN_MAS2, SPRN_MAS3, 628, SPRN_MAS6, SPRN_MAS7,  # MAS1-4, MAS6, MAS7
)  # fmt: skip
"""SPRs a supervisor may write any value to and read back (the kernel stores them, on HV some
are the hardware's guest registers). Not here: timers (DEC, TSR, TCR: time), cache and
core control (L1CSRn, HIDn: their bits act on the hardware), MCSR (write-one-to-clear, QEMU
stores), and MAS0 (its NV field is an implementation's hint)."""
WORD_SPRS = (48, 62, SPRN_MAS1, SPRN_MAS3, 628, SPRN_MAS6, SPRN_MAS7)
"""The 32-bit registers among them on the 64-bit cores (PID, ESR, MAS1, MAS3, MAS4, MAS6,
MAS7): the wide emitter writes them zero-extended words, because QEMU keeps all 64 bits a
``mtspr`` writes to any SPR (``spr_write_generic`` stores a ``target_ulong``) where the
hardware and KVM keep the low word (``docs/fidelity.md``, "Differences the programs avoid")."""
READ_SPRS = (287, 688, 689)
"""Read-only in supervisor state, the same on KVM and the hardware: PVR, TLB0CFG, TLB1CFG."""
READ_SPRS_MMU_V2 = (287,)
"""On e6500 (MMU v2) only PVR: KVM's TLBnCFG differ from the hardware's there (its own guest
TLB0 geometry, TLBnCFG_PT and TLBnCFG_IND cleared: ``emuhost/guest_tlb.py`` ``TLBCFG``)."""
USER_READ_SPRS = (256, 259, 260, 261, 262, 263)
"""Readable in problem state without a trap: USPRG0 and the SPRG3-7 read aliases."""
TLB_PAGES = (0x00100000, 0xE0000000)
"""Pages every program has mapped: the boot entry (TLB1 0, ppce500's -kernel mapping) covers
the image, the host-I/O entry (TLB1 1) the host-I/O page."""

SPECIAL_VALUES = (0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFF, 0x8000)

_XO3 = ("add", "addc", "adde", "subf", "subfc", "subfe", "mullw", "divw", "divwu")
"""rD, rA, rB forms with OE and Rc variants (XER[CA], XER[OV]/[SO], CR0)."""
_XO3_NO_OE = ("mulhw", "mulhwu")
_XO2 = ("addme", "addze", "subfme", "subfze", "neg")
_DFORM_ARITH = ("addi", "addis", "addic", "addic.", "subfic", "mulli")
_LOGICAL3 = ("and", "andc", "or", "orc", "xor", "nand", "nor", "eqv", "slw", "srw", "sraw")
_LOGICAL1 = ("extsb", "extsh", "cntlzw")
_LOGICAL_IMM = ("andi.", "andis.", "ori", "oris", "xori", "xoris")
_CR_LOGIC = ("crand", "cror", "crxor", "crnand", "crnor", "creqv", "crandc", "crorc")
_LOADS = {1: ("lbz",), 2: ("lhz", "lha"), 4: ("lwz",)}
_STORES = {1: "stb", 2: "sth", 4: "stw"}
_BYTEREV = {2: ("lhbrx", "sthbrx"), 4: ("lwbrx", "stwbrx")}
_LOADS_64 = {**_LOADS, 8: ("ld",)}
_STORES_64 = {**_STORES, 8: "std"}
_XO3_64 = ("mulld", "divd", "divdu")
"""rD, rA, rB doubleword forms with OE and Rc variants (divisors forced as for ``divw``)."""
_XO3_64_NO_OE = ("mulhd", "mulhdu")
_LOGICAL3_64 = ("sld", "srd", "srad")
_LOGICAL1_64 = ("extsw", "cntlzd")
MSR_CM = 0x80000000
"""MSR[CM]: 64-bit computation mode; every MSR image the wide emitter writes keeps it."""
_PRIV = (
    "mfmsr r{d}",
    "mtmsr r{s}",
    "mfspr r{d}, 0x01A",  # SRR0
    "mfspr r{d}, 0x03E",  # ESR
    "mfspr r{d}, 0x11E",  # PIR
    "mtspr 0x01B, r{s}",  # SRR1
    "mtspr 0x110, r{s}",  # SPRG0
    "wrteei 1",
    "wrtee r{s}",
    "rfi",
    "tlbwe",
)
"""Privileged in problem state: each raises a program interrupt with ESR[PPR] there and does
nothing (the generator only emits them in problem-state segments)."""
_ILLEGAL_OPCODES = (0, 1, 5, 6, 56, 57, 60, 61)
"""Primary opcodes e500mc does not implement (0 is also the software-breakpoint word's)."""
OPCODE_VSX, OPCODE_VSX_STANDIN = 60, 5
"""On the 64-bit cores an illegal word drawn with primary opcode 60 gets opcode 5 instead:
qemu-system-ppc64 decodes some opcode-60 words as VSX (0xf366bad0, ``xxspltib``, e5500 seed
1098) and raises VSX-unavailable, an exception its BookE delivery has no vector for, so QEMU
aborts ("Raised an exception without defined vector 94"); e5500 and e6500 have no VSX, and
the hardware takes the illegal-instruction program interrupt. Swapping the opcode after the
draw keeps every other word of the program as it was."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the body: an instruction (``kind`` set) or a label (``kind`` None)."""

    text: str
    kind: str | None
    runs: int = 1
    """Upper bound of how many times the instruction executes."""
    user: bool = False
    """Executed in problem state (MSR[PR] = 1)."""


def _imm16(rng: random.Random) -> int:
    return int(rng.choice((0, 1, -1, 0x7FFF, -0x8000, rng.randint(-0x8000, 0x7FFF))))


def random_value(rng: random.Random) -> int:
    """A 32-bit value, often one of the edge cases carries and overflows care about."""
    if rng.random() < 0.3:
        return rng.choice(SPECIAL_VALUES)
    return rng.getrandbits(32)


def trap_taken(to: int, a: int, b: int) -> bool:
    """``tw``/``twi``'s condition for 32-bit operands (ISA: TO bits lt, gt, eq, ltu, gtu)."""

    def signed(v: int) -> int:
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v & 0x80000000 else v

    sa, sb, ua, ub = signed(a), signed(b), a & 0xFFFFFFFF, b & 0xFFFFFFFF
    return bool(
        (to & 16 and sa < sb)
        or (to & 8 and sa > sb)
        or (to & 4 and sa == sb)
        or (to & 2 and ua < ub)
        or (to & 1 and ua > ub)
    )


@dataclass
class Emitter:
    """Draws blocks into ``lines``; ``user`` and ``runs`` describe where the next line goes."""

    rng: random.Random
    lines: list[Line] = field(default_factory=list)
    user: bool = False
    runs: int = 1
    in_loop: bool = False
    wide: bool = False
    """64-bit mode (e5500, e6500): the 64-bit blocks and 64-bit-safe constants."""
    read_sprs: tuple[int, ...] = READ_SPRS
    me: bool = False
    """MSR[ME] where the next line runs (set by the ``rfi`` into a problem-state segment and
    kept by the ``sc`` back): ``mtmsr`` writes it back unchanged, because QEMU's ``mtmsr``
    never alters ME (a Book3S rule, target/ppc/translate.c ``gen_mtmsr``) while BookE's does."""
    _labels: int = 0

    # -- primitives -------------------------------------------------------------------------

    def insn(self, text: str, kind: str = ORDINARY) -> None:
        self.lines.append(Line(text, kind, self.runs, self.user))

    def new_label(self) -> str:
        self._labels += 1
        return f".Lg{self._labels}"

    def place(self, label: str) -> None:
        self.lines.append(Line(f"{label}:", None, self.runs, self.user))

    def size(self) -> int:
        return sum(1 for line in self.lines if line.kind is not None)

    def dest(self) -> int:
        return self.rng.choice(DEST)

    def src(self) -> int:
        return self.rng.choice(SRC)

    def load_value(self, reg: int, value: int) -> None:
        """``reg`` = the 32-bit ``value`` (zero-extended when wide), whatever the value."""
        for text in load_word(reg, value, self.wide):
            self.insn(text)

    def msr_image(self, reg: int, msr: int) -> None:
        """``reg`` = the MSR value ``msr`` (with MSR[CM] when wide: the program stays in 64-bit
        mode)."""
        if self.wide:
            self.load_value(reg, msr | MSR_CM)
        else:
            self.insn(f"li r{reg}, 0")
            self.insn(f"ori r{reg}, r{reg}, {msr:#x}")

    # -- blocks -----------------------------------------------------------------------------

    def item(self, depth: int = 0) -> None:
        """One block at the current position."""
        blocks: list[tuple[float, Callable[[], None]]] = [
            (6, self.arith),
            (4, self.logical),
            (3, self.rotate),
            (3, self.compare),
            (2, self.xer),
            (5, self.memory),
            (2.5, self.raising),
        ]
        if depth < 2:
            blocks += [(1.5, lambda: self.skip(depth)), (1, self.jump)]
        if not self.in_loop and depth < 2:
            blocks.append((1, lambda: self.loop(depth)))
        if not self.user:
            blocks.append((2, self.system))
        else:
            blocks.append((0.5, self.user_spr))
        blocks.append((0.7, self.cache))
        if not self.user and not self.in_loop and depth == 0:
            blocks.append((0.7, self.user_segment))
        if self.wide:
            blocks.append((5, self.doubleword))
        weights = [w for w, _ in blocks]
        self.rng.choices([b for _, b in blocks], weights)[0]()

    def arith(self) -> None:
        rng = self.rng
        pick = rng.random()
        if pick < 0.45:
            op = rng.choice(_XO3)
            rb = self.src()
            if op in ("divw", "divwu"):  # divisor in 1..0x7FFF: the quotient is defined
                rb = self.dest()
                self.insn(f"rlwinm r{rb}, r{self.src()}, 0, 17, 31")
                self.insn(f"ori r{rb}, r{rb}, 1")
            self.insn(f"{op}{rng.choice(('', 'o'))}{rng.choice(('', '.'))} "
                      f"r{self.dest()}, r{self.src()}, r{rb}")  # fmt: skip
        elif pick < 0.55:
            op = rng.choice(_XO3_NO_OE) + rng.choice(("", "."))
            self.insn(f"{op} r{self.dest()}, r{self.src()}, r{self.src()}")
        elif pick < 0.75:
            op = rng.choice(_XO2) + rng.choice(("", "o")) + rng.choice(("", "."))
            self.insn(f"{op} r{self.dest()}, r{self.src()}")
        else:
            op = rng.choice(_DFORM_ARITH)
            self.insn(f"{op} r{self.dest()}, r{self.src()}, {_imm16(rng)}")

    def logical(self) -> None:
        rng = self.rng
        pick = rng.random()
        dot = rng.choice(("", "."))
        if pick < 0.5:
            op = rng.choice(_LOGICAL3)
            self.insn(f"{op}{dot} r{self.dest()}, r{self.src()}, r{self.src()}")
        elif pick < 0.7:
            op = rng.choice(_LOGICAL1)
            self.insn(f"{op}{dot} r{self.dest()}, r{self.src()}")
        else:
            op = rng.choice(_LOGICAL_IMM)
            self.insn(f"{op} r{self.dest()}, r{self.src()}, {rng.randint(0, 0xFFFF):#x}")

    def rotate(self) -> None:
        rng = self.rng
        dot = rng.choice(("", "."))
        sh, mb, me = rng.randint(0, 31), rng.randint(0, 31), rng.randint(0, 31)
        pick = rng.random()
        if pick < 0.35:
            self.insn(f"rlwinm{dot} r{self.dest()}, r{self.src()}, {sh}, {mb}, {me}")
        elif pick < 0.55:
            self.insn(f"rlwimi{dot} r{self.dest()}, r{self.src()}, {sh}, {mb}, {me}")
        elif pick < 0.7:
            self.insn(f"rlwnm{dot} r{self.dest()}, r{self.src()}, r{self.src()}, {mb}, {me}")
        else:
            self.insn(f"srawi{dot} r{self.dest()}, r{self.src()}, {rng.randint(0, 31)}")

    def compare(self) -> None:
        rng = self.rng
        crf = rng.randint(0, 7)
        pick = rng.random()
        if pick < 0.5:
            self.fixed_compare(crf, "cmpw" if pick < 0.15 else "cmplw" if pick < 0.3 else
                               "cmpwi" if pick < 0.4 else "cmplwi")  # fmt: skip
        elif pick < 0.68:
            op = rng.choice(_CR_LOGIC)
            self.insn(f"{op} {rng.randint(0, 31)}, {rng.randint(0, 31)}, {rng.randint(0, 31)}")
        elif pick < 0.75:
            self.insn(f"mcrf cr{crf}, cr{rng.randint(0, 7)}")
        elif pick < 0.83:
            self.insn(f"mtcrf {rng.randint(0, 255):#x}, r{self.src()}")
        elif pick < 0.9:
            self.insn(f"mfcr r{self.dest()}")
        else:
            self.insn(f"isel r{self.dest()}, r{self.src()}, r{self.src()}, {rng.randint(0, 31)}")

    def fixed_compare(self, crf: int, op: str) -> None:
        """``op`` (``cmpw``, ``cmplw``, ``cmpwi``, ``cmplwi`` or a ``d`` form) of a random
        register with a random register or immediate, into ``crf``."""
        a = self.src()
        if not op.endswith("i"):
            b = f"r{self.src()}"
        elif op.startswith("cmpl"):  # unsigned immediate
            b = f"{self.rng.randint(0, 0xFFFF):#x}"
        else:
            b = str(_imm16(self.rng))
        self.insn(f"{op} cr{crf}, r{a}, {b}")

    def xer(self) -> None:
        rng = self.rng
        pick = rng.random()
        if pick < 0.35:
            self.insn(f"mfxer r{self.dest()}")
        elif pick < 0.75:
            reg = self.dest()
            value = rng.getrandbits(3) << 29 | rng.choice((0, rng.randint(0, 127)))
            self.load_value(reg, value)
            self.insn(f"mtxer r{reg}")
        elif pick < 0.85:
            crf = rng.randint(0, 7)  # mcrxr is not in the 64-bit cores' instruction set
            self.insn(f"mfxer r{self.dest()}" if self.wide else f"mcrxr cr{crf}")
        else:  # a carry chain across two words, the way multi-word arithmetic uses XER[CA]
            lo, hi = self.dest(), self.dest()
            self.insn(f"addc r{lo}, r{self.src()}, r{self.src()}")
            self.insn(f"adde{rng.choice(('', 'o', '.', 'o.'))} r{hi}, r{self.src()}, r{self.src()}")

    def memory(self) -> None:
        rng = self.rng
        width = rng.choice((1, 2, 4, 8) if self.wide else (1, 2, 4))
        off = rng.randrange(0, DATA_SIZE - width + 1, width)
        store = rng.random() < 0.45
        loads, stores = (_LOADS_64, _STORES_64) if self.wide else (_LOADS, _STORES)
        op = stores[width] if store else rng.choice(loads[width])
        reg = self.src() if store else self.dest()
        form = rng.random()
        if form < 0.1:
            self.multiple()
        elif form < 0.2 and width in _BYTEREV:
            load, st = _BYTEREV[width]
            self.insn(f"li r{IDX}, {off}")
            self.insn(f"{st if store else load} r{reg}, r{BASE}, r{IDX}")
        elif form < 0.45:
            self.insn(f"{op} r{reg}, {off}(r{BASE})")
        elif form < 0.65:
            self.insn(f"li r{IDX}, {off}")
            a, b = rng.sample((BASE, IDX), 2)
            self.insn(f"{op}x r{reg}, r{a}, r{b}")
        elif form < 0.85:
            disp = rng.randrange(-16, 17, width) if off >= 16 else 0
            self.insn(f"addi r{PTR}, r{BASE}, {off - disp}")
            self.insn(f"{op}u r{reg}, {disp}(r{PTR})")
        else:
            disp = rng.randrange(0, off + 1, width)
            self.insn(f"addi r{PTR}, r{BASE}, {off - disp}")
            self.insn(f"li r{IDX}, {disp}")
            self.insn(f"{op}ux r{reg}, r{PTR}, r{IDX}")

    def multiple(self) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            first = rng.randint(20, 31)
            op = "lmw"
        else:
            first = rng.randint(7, 31)
            op = "stmw"
        span = 4 * (32 - first)
        off = rng.randrange(0, DATA_SIZE - span + 1, 4)
        self.insn(f"{op} r{first}, {off}(r{BASE})")

    def system(self) -> None:
        """Supervisor state: SPRs the kernel emulates or keeps, the guest TLB (``tlbre`` and
        ``tlbsx`` of the two TLB1 entries every program has), MSR[EE] and MSR[ME]."""
        rng = self.rng
        pick = rng.random()
        if pick < 0.4:
            spr = rng.choice(STORAGE_SPRS)
            if spr == SPRN_SRR1 or rng.random() < 0.6:  # SRR1 as an interrupt left it holds
                src = self.src()  # the MSR, with MSR[GS] on BookE-HV
                if self.wide and spr in WORD_SPRS:
                    src, value = self.dest(), src
                    self.insn(f"clrldi r{src}, r{value}, 32")
                self.insn(f"mtspr {spr}, r{src}")
            self.insn(f"mfspr r{self.dest()}, {spr}")
        elif pick < 0.5:
            self.insn(f"mfspr r{self.dest()}, {rng.choice(self.read_sprs)}")
        elif pick < 0.7:  # tlbre of TLB1 entry 0, 1 or an unused one
            reg = self.dest()
            esel = rng.choice((0, 1, rng.randint(2, 63)))
            self.insn(f"lis r{reg}, {0x1000 | esel:#x}")  # MAS0: TLBSEL 1, ESEL, NV 0
            self.insn(f"mtspr {SPRN_MAS0}, r{reg}")
            self.insn("tlbre")
            self.tlb_result()
        elif pick < 0.85:  # tlbsx that hits (SAS 0; a PID the global entries match)
            reg = self.dest()
            self.insn(f"lis r{reg}, {rng.randint(0, 255):#x}")
            self.insn(f"mtspr {SPRN_MAS6}, r{reg}")
            page = rng.choice(TLB_PAGES) + rng.randrange(0, 0x1000, 4)
            self.load_value(reg, page)
            self.insn(f"tlbsx 0, r{reg}")
            self.tlb_result()
        elif pick < 0.93:
            self.insn(f"wrteei {rng.randint(0, 1)}")
        else:  # mtmsr of supervisor state: EE as drawn, ME as it is
            reg = self.dest()
            msr = rng.choice((0, MSR_EE)) | (MSR_ME if self.me else 0)
            self.msr_image(reg, msr)
            self.insn(f"mtmsr r{reg}")

    def tlb_result(self) -> None:
        for spr in self.rng.sample((SPRN_MAS0, SPRN_MAS1, SPRN_MAS2, SPRN_MAS3, SPRN_MAS7), 2):
            self.insn(f"mfspr r{self.dest()}, {spr}")

    def user_spr(self) -> None:
        """Problem state: the SPRs it reaches without a trap."""
        spr = self.rng.choice(USER_READ_SPRS)
        if spr == 256 and self.rng.random() < 0.5:
            self.insn(f"mtspr 256, r{self.src()}")
        self.insn(f"mfspr r{self.dest()}, {spr}")

    def cache(self) -> None:
        """Cache-block instructions on the data area (``dcbz`` zeroes e500mc's 64-byte line)
        and the synchronising ones: ordinary instructions with no trap on either host."""
        rng = self.rng
        if rng.random() < 0.3:
            self.insn(rng.choice(("sync", "isync", "msync", "mbar")))
            return
        op = rng.choice(("dcbz", "dcbt", "dcbtst", "dcbst", "dcbf", "icbi"))
        off = rng.randrange(0, DATA_SIZE, 64 if op == "dcbz" else 4)
        self.insn(f"li r{IDX}, {off}")
        self.insn(f"{op} r{BASE}, r{IDX}")

    def raising(self) -> None:
        rng = self.rng
        kinds = [TRAP, TRAP, ILLEGAL, SWBP] + ([PRIV, PRIV] if self.user else [SC])
        kind = rng.choice(kinds)
        if kind == TRAP:
            self.trap()
        elif kind == SC:
            self.insn("sc", SC)
        elif kind == ILLEGAL:
            op = rng.choice(_ILLEGAL_OPCODES)
            if self.wide and op == OPCODE_VSX:
                op = OPCODE_VSX_STANDIN
            word = op << 26 | rng.getrandbits(26)
            if word == KVMPPC_INST_SW_BREAKPOINT:
                word = 0
            self.insn(f".long {word:#010x}", ILLEGAL)
        elif kind == SWBP:
            self.insn(f".long {KVMPPC_INST_SW_BREAKPOINT:#010x}", SWBP)
        else:
            self.priv()

    def trap(self) -> None:
        """A trap whose outcome is known here: always (TO = 31), a register against itself,
        or operands just loaded with ``li``. Untaken traps are ordinary instructions."""
        rng = self.rng
        pick = rng.random()
        if pick < 0.3:
            self.insn(f"tw 31, r{self.src()}, r{self.src()}", TRAP)
            return
        to = rng.randint(0, 31)
        if pick < 0.55:
            reg = self.src()
            self.insn(f"tw {to}, r{reg}, r{reg}", TRAP if to & 4 else ORDINARY)
            return
        a, va = self.dest(), rng.randint(-0x8000, 0x7FFF)
        self.insn(f"li r{a}, {va}")
        vb = rng.choice((va, rng.randint(-0x8000, 0x7FFF)))
        if pick < 0.8:
            self.insn(f"twi {to}, r{a}, {vb}", TRAP if trap_taken(to, va, vb) else ORDINARY)
            return
        b = rng.choice([r for r in DEST if r != a])
        self.insn(f"li r{b}, {vb}")
        self.insn(f"tw {to}, r{a}, r{b}", TRAP if trap_taken(to, va, vb) else ORDINARY)

    def skip(self, depth: int) -> None:
        """A conditional forward branch over a few blocks (decrementing CTR only outside a
        loop, whose count lives there)."""
        rng = self.rng
        label = self.new_label()
        bos = [4, 6, 7, 12, 14, 15, 20] + ([16, 18, 25] if not self.in_loop else [])
        self.insn(f"bc {rng.choice(bos)}, {rng.randint(0, 31)}, {label}")
        for _ in range(rng.randint(1, 3)):
            self.item(depth + 1)
        self.place(label)

    def jump(self) -> None:
        """A taken jump over a block that never runs: ``b``, ``bl``, ``bcl``, or through LR or
        CTR (set with ``mtlr``/``mtctr``; conditional ``bclr`` too)."""
        rng = self.rng
        label = self.new_label()
        pick = rng.random()
        if pick < 0.2:
            self.insn(f"b {label}")
        elif pick < 0.4:
            self.insn(f"bl {label}")
        elif pick < 0.5:
            self.insn(f"bcl 20, 31, {label}")
        else:
            reg = self.rng.choice(ADDR_DEST)
            self.insn(f"lis r{reg}, {label}@ha")
            self.insn(f"addi r{reg}, r{reg}, {label}@l")
            via_ctr = not self.in_loop and rng.random() < 0.4
            if via_ctr:
                self.insn(f"mtctr r{reg}")
                self.insn(rng.choice(("bctr", "bctrl")))
            else:
                self.insn(f"mtlr r{reg}")
                self.insn(rng.choice(("blr", "blrl", f"bclr 12, {rng.randint(0, 31)}")))
        self.arith()  # jumped over: never runs
        self.place(label)

    def loop(self, depth: int) -> None:
        rng = self.rng
        trips = rng.randint(1, 4)
        reg = self.dest()
        self.insn(f"li r{reg}, {trips}")
        self.insn(f"mtctr r{reg}")
        label = self.new_label()
        outer, self.runs, self.in_loop = self.runs, self.runs * trips, True
        self.place(label)
        for _ in range(rng.randint(2, 5)):
            self.item(depth + 1)
        pick = rng.random()
        if pick < 0.7:
            self.insn(f"bdnz {label}")
        else:  # bdnzt / bdnzf: also leaves early on the CR bit
            self.insn(f"bc {rng.choice((0, 8))}, {rng.randint(0, 31)}, {label}")
        self.runs, self.in_loop = outer, False

    def user_segment(self) -> None:
        """Drop to problem state with the guest's own ``rfi`` (SRR1 = MSR[PR]), run a few
        blocks there, and come back with ``sc`` (the handler returns with PR cleared)."""
        rng = self.rng
        label = self.new_label()
        reg = rng.choice(ADDR_DEST)
        self.insn(f"lis r{reg}, {label}@ha")
        self.insn(f"addi r{reg}, r{reg}, {label}@l")
        self.insn(f"mtspr {SPRN_SRR0:#x}, r{reg}")
        msr = MSR_PR | rng.choice((0, MSR_EE, MSR_ME, MSR_EE | MSR_ME))
        self.me = bool(msr & MSR_ME)
        self.msr_image(reg, msr)
        self.insn(f"mtspr {SPRN_SRR1:#x}, r{reg}")
        self.insn("rfi")
        self.user = True
        self.place(label)
        for _ in range(rng.randint(2, 6)):
            self.item(1)
        self.priv()  # at least one privileged instruction per segment
        self.insn("sc", SC)
        self.user = False

    def doubleword(self) -> None:
        """64-bit mode only: the doubleword instructions (loads and stores of doublewords come
        from ``memory``; ``addic``/``subfic`` and every carrying form already set XER[CA] from
        the 64-bit result there)."""
        rng = self.rng
        dot = rng.choice(("", "."))
        pick = rng.random()
        if pick < 0.2:
            op = rng.choice(_XO3_64)
            rb = self.src()
            if op != "mulld":  # divisor in 1..0x7FFF, as for divw
                rb = self.dest()
                self.insn(f"rldicl r{rb}, r{self.src()}, 0, 49")
                self.insn(f"ori r{rb}, r{rb}, 1")
            oe = rng.choice(("", "o"))
            self.insn(f"{op}{oe}{dot} r{self.dest()}, r{self.src()}, r{rb}")
        elif pick < 0.39:  # no OE form: mulhd, mulhdu, sld, srd, srad
            op = rng.choice(_XO3_64_NO_OE + _LOGICAL3_64)
            self.insn(f"{op}{dot} r{self.dest()}, r{self.src()}, r{self.src()}")
        elif pick < 0.59:
            sh, m = rng.randint(0, 63), rng.randint(0, 63)
            op = rng.choice(("rldicl", "rldicr", "rldic", "rldimi"))
            self.insn(f"{op}{dot} r{self.dest()}, r{self.src()}, {sh}, {m}")
        elif pick < 0.67:
            op, m = rng.choice(("rldcl", "rldcr")), rng.randint(0, 63)
            self.insn(f"{op}{dot} r{self.dest()}, r{self.src()}, r{self.src()}, {m}")
        elif pick < 0.72:
            self.insn(f"sradi{dot} r{self.dest()}, r{self.src()}, {rng.randint(0, 63)}")
        elif pick < 0.8:
            op = rng.choice(_LOGICAL1_64)
            self.insn(f"{op}{dot} r{self.dest()}, r{self.src()}")
        elif pick < 0.9:
            self.fixed_compare(rng.randint(0, 7), rng.choice(("cmpd", "cmpld", "cmpdi", "cmpldi")))
        elif pick < 0.95:
            for text in load_doubleword(self.dest(), rng.getrandbits(64)):
                self.insn(text)
        else:  # a doubleword trap: always, or a register against itself
            to = rng.choice((31, rng.randint(0, 31)))
            reg = self.src()
            self.insn(f"td {to}, r{reg}, r{reg}", TRAP if to & 4 else ORDINARY)

    def priv(self) -> None:
        text = self.rng.choice(_PRIV).format(d=self.dest(), s=self.src())
        self.insn(text, PRIV)


def load_word(reg: int, value: int, wide: bool) -> list[str]:
    """``reg`` = the 32-bit ``value``: ``lis``; ``ori`` (sign-extended into a 64-bit register),
    or, ``wide``, ``li``; ``oris``; ``ori`` (zero-extended: what a 64-bit program means)."""
    hi, lo = (value >> 16) & 0xFFFF, value & 0xFFFF
    if wide:
        return [f"li r{reg}, 0", f"oris r{reg}, r{reg}, {hi:#x}", f"ori r{reg}, r{reg}, {lo:#x}"]
    return [f"lis r{reg}, {hi:#x}", f"ori r{reg}, r{reg}, {lo:#x}"]


def load_doubleword(reg: int, value: int) -> list[str]:
    """``reg`` = the 64-bit ``value`` (64-bit mode or not: ``sldi`` works on the whole register)."""
    return [
        *load_word(reg, value >> 32, False),
        f"sldi r{reg}, r{reg}, 32",
        f"oris r{reg}, r{reg}, {(value >> 16) & 0xFFFF:#x}",
        f"ori r{reg}, r{reg}, {value & 0xFFFF:#x}",
    ]


def random_doubleword(rng: random.Random) -> int:
    """A 64-bit value: often a 32-bit edge case, sign- or zero-extended, or a 64-bit one."""
    pick = rng.random()
    if pick < 0.15:
        return rng.choice(SPECIAL_VALUES)
    if pick < 0.3:
        v = rng.choice(SPECIAL_VALUES)
        return v | 0xFFFFFFFF00000000 if v & 0x80000000 else v
    if pick < 0.4:
        return rng.choice((0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 1 << 32))
    return rng.getrandbits(64)


def body(
    rng: random.Random, length: int, wide: bool = False, read_sprs: tuple[int, ...] = READ_SPRS
) -> list[Line]:
    """Blocks until at least ``length`` instructions (64-bit ones too if ``wide``)."""
    em = Emitter(rng, wide=wide, read_sprs=read_sprs)
    while em.size() < length:
        em.item()
    return em.lines
