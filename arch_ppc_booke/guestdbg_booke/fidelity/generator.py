"""Seeded random e500mc guest programs that install their own interrupt handlers.

``generate(seed)`` gives the same program for the same seed, every time and everywhere: a
``Program`` holding assembly text, built with the real GNU binutils (content-cached), that runs
unchanged as a ``-kernel`` ELF on QEMU's ppce500 and on the emulated e500mc KVM host.

What a program does, in order:

1. maps the host-I/O page (``hostio.inc``), points IVPR at itself and every IVOR0-15 at a
   handler of its own;
2. finds its vCPU's area by PIR (``areas + PIR * area_size``: data, counters, log), so two vCPUs
   running it at once never share a writable byte;
3. loads random values into every GPR it may use, CR, XER, LR and CTR;
4. runs the random ``body`` (``mix``): integer, logical, rotate, compare/CR, every XER form,
   loads and stores of every width, forward branches, bounded loops, problem-state segments,
   and instructions that raise: taken traps, ``sc``, illegal words, privileged instructions in
   problem state, and the software-breakpoint word 0x00dddd00;
5. reports its program-interrupt count through HOSTIO_DONE and spins at ``done``.

The handlers record what they receive: the program-interrupt handler (IVOR6) and the system-call
handler (IVOR8) append {vector, SRR0, SRR1, ESR, DEAR} to the area's log and count; the program
handler returns past the instruction, the system-call handler returns to SRR0 in supervisor
state (clearing SRR1[PR] is how a problem-state segment ends). The program handler also clears
SRR1 bits 12-14 before returning: the programs never set them (MSR[CE] is bit 14), and QEMU puts
Book3S cause bits there (``known.QEMU_SRR1_CAUSE``) that its ``rfi`` would otherwise carry into
the MSR. Any other interrupt is a fault of
the generator: its handler logs it, counts it and goes to ``finish``. Handlers use only r3 (log
cursor) and r4 (cleared before ``rfi``) and change neither CR nor XER, so nothing host-specific
stays in a register the comparison looks at.

For the 64-bit cores (``generate(seed, core="e5500")`` or ``"e6500"``) the program is built as a
64-bit ELF and, right after installing its handlers, switches to 64-bit mode the way a 64-bit
BookE kernel does (``boot64.inc`` ``ENTER_64BIT``: EPCR[ICM] so interrupts are taken in 64-bit
mode, then MSR[CM]); its initial values are 64-bit and its body draws the 64-bit blocks too
(``mix.Emitter.wide``). Its handlers keep only the low words of SRR0, SRR1, ESR and DEAR in the
log (the same layout as the 32-bit programs: the addresses are below 4 GiB and ESR is a 32-bit
register) and clear SRR1 bits with ``rldicl`` rotations, which keep the upper word (``rlwinm``
would copy the low word into it in 64-bit mode).
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from guestdbg.demo.elf_info import symbols

from ..guests.build import build, build64
from . import mix
from .mix import BASE, DATA_SIZE, DEST, LOG, Line

DEFAULT_LENGTH = 100
"""Body instructions (at least): about 100 breakpoint stops per program (measured: 101 on
average over 40 seeds), loops counted and jumped-over blocks not."""
ENTRY_SIZE = 20
"""One log entry: vector, SRR0, SRR1, ESR, DEAR (words)."""
ENTRY_FIELDS = ("vector", "srr0", "srr1", "esr", "dear")
COUNTS = DATA_SIZE
"""Offset of the counters in an area: program, system call, anything else (a generator bug)."""
COUNT_NAMES = ("program", "syscall", "other")
LOG_OFFSET = COUNTS + 16
IVOR_SPR0 = 0x190
SPRN_PIR, SPRN_IVPR = 0x11E, 0x03F
SPRN_SRR0, SPRN_SRR1, SPRN_ESR, SPRN_DEAR = 0x01A, 0x01B, 0x03E, 0x03D
VECTOR_PROGRAM, VECTOR_SYSCALL = 6, 8
CACHE_BLOCK = 64
"""e500mc's data cache block: what ``dcbz`` zeroes, and what each vCPU's area is aligned to
(e5500's and e6500's L1 data cache block is 64 bytes too)."""
CORES = ("e500mc", "e5500", "e6500")
WIDE_CORES = ("e5500", "e6500")
"""The 64-bit cores: their programs run in 64-bit mode."""


@dataclass(frozen=True)
class Layout:
    """Where a built program's parts are (guest addresses; effective = physical)."""

    entry: int
    body: int
    done: int
    text: tuple[int, int]
    """[start, end) of all code: body, prologue and handlers."""
    areas: int
    area_size: int
    vcpus: int
    log_entries: int
    kinds: dict[int, str]
    """Every body instruction's address -> ``mix.ORDINARY`` or what it raises."""
    runs: dict[int, int]
    """Every body instruction's address -> how often it can run at most (loop trips)."""

    @property
    def data(self) -> tuple[int, int]:
        """[start, end) of everything the guest writes in RAM (all vCPUs' areas)."""
        return self.areas, self.areas + self.vcpus * self.area_size

    def area(self, vcpu: int = 0) -> int:
        return self.areas + vcpu * self.area_size

    def counters(self, vcpu: int = 0) -> int:
        return self.area(vcpu) + COUNTS

    def log(self, vcpu: int = 0) -> int:
        return self.area(vcpu) + LOG_OFFSET

    @property
    def ordinary(self) -> tuple[int, ...]:
        """Body instructions that complete without an interrupt: where a debugger may stop."""
        return tuple(a for a, k in sorted(self.kinds.items()) if k == mix.ORDINARY)

    @property
    def raising(self) -> dict[int, str]:
        return {a: k for a, k in sorted(self.kinds.items()) if k != mix.ORDINARY}

    @property
    def max_stops(self) -> int:
        """More breakpoint stops than the program can make (one per run of an ordinary body
        instruction, plus ``done``): a run past it loops where the program cannot."""
        return sum(self.runs[a] for a in self.ordinary) + 2

    def log_field(self, addr: int) -> str | None:
        """Which log field (``ENTRY_FIELDS``) the data word at ``addr`` is, if any."""
        for vcpu in range(self.vcpus):
            off = addr - self.log(vcpu)
            if 0 <= off < self.log_entries * ENTRY_SIZE and off % 4 == 0:
                return ENTRY_FIELDS[(off % ENTRY_SIZE) // 4]
        return None


@dataclass(frozen=True)
class Program:
    seed: int
    length: int
    vcpus: int
    lines: tuple[Line, ...]
    initial: tuple[tuple[int, int], ...]
    """(register, value) the prologue loads."""
    data: bytes
    """The initial contents of each vCPU's data area."""
    core: str = "e500mc"

    @property
    def wide(self) -> bool:
        return self.core in WIDE_CORES

    @cached_property
    def log_entries(self) -> int:
        """Room for every interrupt the body can raise (loop trips counted), plus one for a
        stray interrupt the generator did not mean."""
        return sum(line.runs for line in self.lines if line.kind in mix.RAISING) + 1

    @cached_property
    def area_size(self) -> int:
        """Whole cache blocks: ``dcbz`` zeroes e500mc's 64-byte block, and a vCPU's area that
        shared a block with the next one's had its tail zeroed by the other vCPU's ``dcbz``,
        earlier or later depending on how the two interleaved (found by the 2-vCPU host-step
        property test, seed 1685: the undebugged run itself depended on the interleaving)."""
        return (LOG_OFFSET + self.log_entries * ENTRY_SIZE + CACHE_BLOCK - 1) & -CACHE_BLOCK

    @cached_property
    def source(self) -> str:
        return _assemble(self)

    @property
    def name(self) -> str:
        suffix = f"-{self.core}" if self.wide else ""
        return f"fidelity-{self.seed}-{self.length}-{self.vcpus}{suffix}"

    def build(self, out_dir: Path) -> Path:
        """The ELF (GNU as + ld, cached by content) in ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:12]
        src = out_dir / f"{self.name}-{digest}.S"
        if not src.exists():
            fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".S.tmp")
            with os.fdopen(fd, "w") as f:
                f.write(self.source)
            os.replace(tmp, src)
        return build64(src, out_dir) if self.wide else build(src, out_dir)

    def layout(self, elf: Path) -> Layout:
        sym = symbols(elf)
        kinds: dict[int, str] = {}
        runs: dict[int, int] = {}
        addr = sym["body"]
        for line in self.lines:
            if line.kind is not None:
                kinds[addr] = line.kind
                runs[addr] = line.runs
                addr += 4
        if addr != sym["finish"]:
            raise AssertionError(f"{elf}: body ends at {addr:#x}, finish is {sym['finish']:#x}")
        return Layout(
            entry=sym["_start"],
            body=sym["body"],
            done=sym["done"],
            text=(sym["_start"], sym["text_end"]),
            areas=sym["areas"],
            area_size=self.area_size,
            vcpus=self.vcpus,
            log_entries=self.log_entries,
            kinds=kinds,
            runs=runs,
        )

    def symbols(self, elf: Path) -> dict[str, int]:
        return symbols(elf)


def generate(
    seed: int, *, length: int = DEFAULT_LENGTH, vcpus: int = 1, core: str = "e500mc"
) -> Program:
    """The program of ``seed`` for ``core``: the same text for the same arguments, on every
    machine (a 64-bit core's program is another one, drawn from its own stream)."""
    if length < 1 or vcpus < 1:
        raise ValueError(f"length and vcpus must be positive, not {length}, {vcpus}")
    if core not in CORES:
        raise ValueError(f"no fidelity programs for core {core!r} (cores: {', '.join(CORES)})")
    wide = core in WIDE_CORES
    rng = random.Random(f"guestdbg-booke-fidelity/{seed}" + ("/64" if wide else ""))
    value = mix.random_doubleword if wide else mix.random_value
    initial = tuple((r, value(rng)) for r in DEST)
    data = bytes(rng.getrandbits(8) for _ in range(DATA_SIZE))
    read_sprs = mix.READ_SPRS_MMU_V2 if core == "e6500" else mix.READ_SPRS
    lines = tuple(mix.body(rng, length, wide, read_sprs))
    return Program(seed, length, vcpus, lines, initial, data, core)


# -- assembly text ------------------------------------------------------------------------------


def _handler(vector: int | str, count_offset: int, tail: list[str]) -> list[str]:
    """Log {vector, SRR0, SRR1, ESR, DEAR}, count, then ``tail``; r4 is the only scratch."""
    out = [] if vector == "r4" else [f"    li r4, {vector}"]
    out += [f"    stw r4, 0(r{LOG})"]
    for i, spr in enumerate((SPRN_SRR0, SPRN_SRR1, SPRN_ESR, SPRN_DEAR), start=1):
        out += [f"    mfspr r4, {spr:#x}", f"    stw r4, {4 * i}(r{LOG})"]
    out += [
        f"    addi r{LOG}, r{LOG}, {ENTRY_SIZE}",
        f"    lwz r4, {COUNTS + count_offset}(r{BASE})",
        "    addi r4, r4, 1",
        f"    stw r4, {COUNTS + count_offset}(r{BASE})",
    ]
    return out + tail


def _clear_srr1_bits(first: int, last: int, wide: bool) -> str:
    """r4 with SRR1 bits ``first``..``last`` (IBM numbering of the low word) cleared; the upper
    word kept when ``wide`` (two ``rldicl`` rotations instead of ``rlwinm``)."""
    if not wide:
        return f"    rlwinm r4, r4, 0, {last + 1}, {first - 1}"
    n = last - first + 1  # rotate the bits to the top, clear them, rotate back
    return f"    rldicl r4, r4, {32 + first}, {n}\n    rldicl r4, r4, {32 - first}, 0"


def _assemble(p: Program) -> str:
    out = [
        f"# guestdbg fidelity program: seed {p.seed}, length {p.length}, vcpus {p.vcpus}",
        "# (guestdbg_booke.fidelity.generator; regenerate, do not edit)",
        '    .include "hostio.inc"',
        *(['    .include "boot64.inc"'] if p.wide else []),
        '    .section .text.start, "ax"',
        "    .globl _start",
        "_start:",
        "    HOSTIO64_MAP r4" if p.wide else "    HOSTIO_MAP r4",
        "    lis r4, _start@h",
        f"    mtspr {SPRN_IVPR:#x}, r4",
    ]
    for n in range(16):
        target = {VECTOR_PROGRAM: "prog_h", VECTOR_SYSCALL: "sc_h"}.get(n, f"other_{n}")
        out += [f"    li r4, {target} - _start", f"    mtspr {IVOR_SPR0 + n:#x}, r4"]
    if p.wide:
        out += ["    ENTER_64BIT r4"]
    out += [
        f"    mfspr r4, {SPRN_PIR:#x}",
        f"    mulli r4, r4, {p.area_size}",
        f"    lis r{BASE}, areas@ha",
        f"    addi r{BASE}, r{BASE}, areas@l",
        f"    add r{BASE}, r{BASE}, r4",
        f"    addi r{LOG}, r{BASE}, {LOG_OFFSET}",
    ]
    for reg, value in p.initial:
        load = mix.load_doubleword(reg, value) if p.wide else mix.load_word(reg, value, False)
        out += [f"    {text}" for text in load]
    regs = [r for r, _ in p.initial]
    xer = p.initial[-4][1] & 0xE000007F  # SO, OV, CA and the byte count only
    out += [
        f"    mtcrf 0xff, r{regs[-1]}",
        f"    mtlr r{regs[-2]}",
        f"    mtctr r{regs[-3]}",
        *(f"    {text}" for text in mix.load_word(4, xer, p.wide)),
        "    mtxer r4",
        "    li r4, 0",
        "    li r5, 0",
        "    li r6, 0",
        "    .globl body",
        "body:",
    ]
    for line in p.lines:
        out.append(line.text if line.kind is None else f"    {line.text}")
    out += [
        "    .globl finish",
        "finish:",
        f"    lwz r4, {COUNTS}(r{BASE})",
        *(["    li r5, 0", "    oris r5, r5, HOSTIO64_BASE_HI", "    stw r4, HOSTIO_DONE(r5)"]
          if p.wide else ["    HOSTIO_DONE_WITH r4, r5"]),
        "    .globl done",
        "done:",
        "    b done",
        "",
        "    .align 4",
        "prog_h:",
        *_handler(VECTOR_PROGRAM, 0, [
            f"    mfspr r4, {SPRN_SRR0:#x}",
            "    addi r4, r4, 4",
            f"    mtspr {SPRN_SRR0:#x}, r4",
            f"    mfspr r4, {SPRN_SRR1:#x}",
            _clear_srr1_bits(12, 14, p.wide),  # SRR1 bits 12-14 = 0 (the module docstring)
            f"    mtspr {SPRN_SRR1:#x}, r4",
            "    li r4, 0",
            "    rfi",
        ]),
        "    .align 4",
        "sc_h:",
        *_handler(VECTOR_SYSCALL, 4, [
            f"    mfspr r4, {SPRN_SRR1:#x}",
            _clear_srr1_bits(17, 17, p.wide),  # SRR1[PR] = 0: return in supervisor state
            f"    mtspr {SPRN_SRR1:#x}, r4",
            "    li r4, 0",
            "    rfi",
        ]),
    ]  # fmt: skip
    for n in range(16):
        if n not in (VECTOR_PROGRAM, VECTOR_SYSCALL):
            out += ["    .align 4", f"other_{n}:", f"    li r4, {n}", "    b other_h"]
    out += ["other_h:", *_handler("r4", 8, ["    b finish"])]
    out += ["    .globl text_end", "text_end:", "", "    .data", "    .align 6", "    .globl areas"]
    out.append("areas:")
    words = [int.from_bytes(p.data[i : i + 4], "big") for i in range(0, DATA_SIZE, 4)]
    for _ in range(p.vcpus):
        for i in range(0, len(words), 8):
            out.append("    .long " + ", ".join(f"{w:#010x}" for w in words[i : i + 8]))
        out.append(f"    .space {p.area_size - DATA_SIZE}")
    return "\n".join(out) + "\n"
