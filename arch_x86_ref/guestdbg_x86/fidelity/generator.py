"""Seeded random x86-64 CPL0 programs for the differential of the emulated host against KVM.

A program is GNU as source: it loads every register with a value chosen by the seed, runs
``length`` random items - integer ALU of every width, loads and stores to its data area,
pushes and pops, forward branches, bounded loops, calls and returns, string instructions,
flags observed through PUSHF/LAHF/SETcc/CMOVcc/ADC - and stops with ``hlt``. The same seed
gives the same source, byte for byte.

Only instructions KVM's x86 emulator (``arch/x86/kvm/emulate.c``, its ``opcode_table`` and
``twobyte_table``) implements are used: on the kvm_pvm host every CPL0 instruction goes through
it, and an unsupported one is KVM_EXIT_INTERNAL_ERROR. So no ``int``/``int3`` (``emulate_int``
is real mode only), no CPUID/RDTSC (their values differ between hosts by design), no MOVBE
(``em_movbe`` is #UD without the guest CPUID bit, and the VMM sets no CPUID), no
LZCNT/TZCNT/POPCNT (not in the tables: the emulator would decode F3 0F BC as BSF).

Nothing a program does is architecturally undefined except status flags, which are tracked
(:mod:`.flags`): values that are read are defined; a divide never faults (the divisor is made
odd and the dividend's high half zero or a sign extension); BSF/BSR get a nonzero source; shift
and rotate counts stay below the operand width (and by-CL shifts are 32/64-bit, where the
hardware masks the count below the width too). All memory a program touches is its data area
(:data:`DATA_SIZE` bytes, addressed through R15, RIP-relative, or R15 plus an index masked into
range) and its stack (:data:`STACK_SIZE` bytes; pushes are popped before the block that pushed
them ends, so every path leaves the stack balanced). R14 is the loop counter and R15 the data
base; every other general register is fair game, RBP only outside an ENTER frame.

Two forms are left out because the emulated host gets them wrong and the fault is Unicorn's
(QEMU 5 TCG) translation, which the model cannot reach (``docs/fidelity.md``, "Emulated-host
bugs not yet fixed"; each has an expected-failure test in ``tests/fidelity``): SHLD/SHRD with an
immediate count and a RIP-relative memory operand (the address misses the immediate byte), and
LOCK NEG (wrong status flags).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..guests import build as build_guest
from .flags import AF, CF, CONDITIONS, LOGIC, OF, PF, SF, STATUS, ZF

DATA_SIZE = 256
STACK_SIZE = 512
DEFAULT_LENGTH = 60
UNDEFINED_LABEL = "u"
"""Labels ``u<n>`` mark an instruction before which some status flags may be undefined."""
REP_LABEL = "rep"
"""Labels ``rep<n>`` mark each REP-prefixed string instruction."""

_NAMES64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
            *(f"r{n}" for n in range(8, 16)))  # fmt: skip
_LEGACY32 = {"rax": "eax", "rbx": "ebx", "rcx": "ecx", "rdx": "edx", "rsi": "esi", "rdi": "edi",
             "rbp": "ebp", "rsp": "esp"}  # fmt: skip
_LEGACY16 = {k: v[1:] for k, v in _LEGACY32.items()}
_LEGACY8 = {"rax": "al", "rbx": "bl", "rcx": "cl", "rdx": "dl", "rsi": "sil", "rdi": "dil",
            "rbp": "bpl", "rsp": "spl"}  # fmt: skip
_HIGH8 = ("ah", "bh", "ch", "dh")
_LOW8_LEGACY = ("al", "bl", "cl", "dl")
FREE = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", *(f"r{n}" for n in range(8, 14)))
"""Registers random instructions may write (R14: loop counter, R15: data base, RSP)."""
WIDTHS = (8, 16, 32, 64)
SUFFIX = {8: "b", 16: "w", 32: "l", 64: "q"}
_MASK = {8: 0xFF, 16: 0xFFFF, 32: 0xFFFFFFFF, 64: 0xFFFFFFFFFFFFFFFF}


def reg(name: str, width: int) -> str:
    """The AT&T name of 64-bit register ``name`` at ``width`` bits."""
    if width == 64:
        return f"%{name}"
    if name in _LEGACY32:
        table = {32: _LEGACY32, 16: _LEGACY16, 8: _LEGACY8}[width]
        return f"%{table[name]}"
    return f"%{name}{ {32: 'd', 16: 'w', 8: 'b'}[width] }"


@dataclass(frozen=True)
class ProgramLayout:
    """Where a built program lives (from its ELF symbols)."""

    entry: int
    text: tuple[int, int]
    data: tuple[int, int]
    stack: tuple[int, int]
    undefined_at: Mapping[int, int]
    """Instruction address -> the status flags that may be undefined when RIP is there."""
    rep_at: frozenset[int]
    """Addresses of the REP-prefixed string instructions."""
    halted: int
    """The address after the final ``hlt``."""


@dataclass(frozen=True)
class Program:
    seed: int
    length: int
    source: str
    undefined_flags: Mapping[str, int]
    """``u<n>`` label -> the status flags that may be undefined there."""

    def build(self, out_dir: Path) -> Path:
        """The ELF, assembled and linked by GNU as/ld (cached by content in ``out_dir``)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        src = out_dir / f"fidelity-{self.seed}.S"
        if not src.exists() or src.read_text() != self.source:
            tmp = src.with_suffix(f".{id(self)}.tmp")
            tmp.write_text(self.source)
            tmp.replace(src)
        return build_guest(src, out_dir)

    def layout(self, symbols: Mapping[str, int], entry: int) -> ProgramLayout:
        undefined = {symbols[label]: mask for label, mask in self.undefined_flags.items()}
        return ProgramLayout(
            entry,
            (symbols["start"], symbols["text_end"]),
            (symbols["data"], symbols["data"] + DATA_SIZE),
            (symbols["stack"], symbols["stack_top"]),
            undefined,
            frozenset(v for k, v in symbols.items() if k.startswith(REP_LABEL) and k[3:].isdigit()),
            symbols["halted"],
        )


def generate(seed: int, *, length: int = DEFAULT_LENGTH) -> Program:
    """The program of ``seed``: ``length`` top-level items, then ``hlt``."""
    gen = _Generator(seed)
    gen.program(length)
    return Program(seed, length, gen.source(), dict(gen.masks))


# -- the generator ------------------------------------------------------------------------------


@dataclass
class _Frame:
    """A block's view of the stack: what it pushed must be popped before it ends."""

    pushed: int = 0


@dataclass
class _Generator:
    seed: int
    rng: random.Random = field(init=False)
    out: list[str] = field(default_factory=list)
    subs: list[list[str]] = field(default_factory=list)
    undef: int = 0
    masks: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    reserved: set[str] = field(default_factory=set)
    in_loop: bool = False
    call_depth: int = 0
    frame: _Frame = field(default_factory=_Frame)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -- emitting ---------------------------------------------------------------------------

    def label(self, prefix: str = "L") -> str:
        self.labels += 1
        return f"{prefix}{self.labels}"

    def place(self, label: str) -> None:
        self.out.append(f"{label}:")

    def mark(self) -> None:
        """Record the flags that may be undefined at the next instruction's address."""
        if self.undef:
            name = self.label(UNDEFINED_LABEL)
            self.out.append(f"{name}:")
            self.masks[name] = self.undef

    def emit(self, insn: str, defines: int = 0, undefines: int = 0, reads: int = 0) -> None:
        if reads & self.undef:
            self.define_flags()
        self.mark()
        self.out.append(f"\t{insn}")
        self.undef = (self.undef & ~defines) | undefines

    def define_flags(self) -> None:
        """An instruction that defines all six status flags (ADD/SUB/CMP/NEG)."""
        op = self.rng.choice(("add", "sub", "cmp"))
        w = self.rng.choice(WIDTHS)
        self.emit(f"{op}{SUFFIX[w]} {self.src(w)}, {self.dst_reg(w)}", defines=STATUS)

    # -- operands ---------------------------------------------------------------------------

    def free(self, avoid: tuple[str, ...] = ()) -> str:
        choices = [r for r in FREE if r not in self.reserved and r not in avoid]
        return self.rng.choice(choices)

    def dst_reg(self, w: int, avoid: tuple[str, ...] = ()) -> str:
        return reg(self.free(avoid), w)

    def imm(self, w: int) -> int:
        """An immediate that fits ``w`` bits (64-bit ops take a sign-extended imm32)."""
        bits = min(w, 32)
        r = self.rng.random()
        if r < 0.3:
            v = self.rng.choice((0, 1, 2, -1, -2, (1 << (bits - 1)) - 1, -(1 << (bits - 1))))
        else:
            v = self.rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))
        return v

    def value64(self) -> int:
        r = self.rng.random()
        if r < 0.25:
            return self.rng.choice(
                (0, 1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF,
                 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF, 0x8000, 0x80, 0xFF)
            )  # fmt: skip
        if r < 0.5:
            return self.rng.randrange(0, 1 << 16)
        return self.rng.getrandbits(64)

    def mem(self, w: int) -> str:
        """A ``w``-bit operand inside the data area."""
        size = w // 8
        r = self.rng.random()
        if r < 0.4:
            return f"{self.rng.randrange(0, DATA_SIZE - size + 1)}(%r15)"
        if r < 0.7:
            return f"data+{self.rng.randrange(0, DATA_SIZE - size + 1)}(%rip)"
        scale = self.rng.choice((1, 2, 4, 8))
        base = self.rng.randrange(0, DATA_SIZE // 2)
        room = (DATA_SIZE - size - base) // scale
        bits = max(room.bit_length() - 1, 0)
        index = self.free()
        self.emit(f"andl ${(1 << bits) - 1}, {reg(index, 32)}", defines=LOGIC, undefines=AF)
        return f"{base}(%r15,%{index},{scale})"

    def src(self, w: int) -> str:
        r = self.rng.random()
        if r < 0.4:
            return f"${self.imm(w)}"
        if r < 0.7:
            return self.dst_reg(w)
        return self.mem(w)

    def rm(self, w: int) -> str:
        """A destination: a register or the data area."""
        return self.dst_reg(w) if self.rng.random() < 0.65 else self.mem(w)

    # -- program structure ------------------------------------------------------------------

    def program(self, length: int) -> None:
        for name in FREE:
            self.emit(f"movabsq ${self.value64():#x}, %{name}")
        self.emit("xorl %r14d, %r14d", defines=LOGIC, undefines=AF)
        self.emit("leaq data(%rip), %r15")
        initial = 0x2 | self.rng.getrandbits(12) & STATUS
        self.emit(f"pushq ${initial:#x}")
        self.emit("popfq", defines=STATUS)
        self.block(length)
        self.emit("hlt")
        self.place("halted")
        self.mark()  # the state KVM_EXIT_HLT leaves: RIP past the hlt
        self.out.append("\tnop")

    def block(self, items: int) -> None:
        """``items`` items; the stack is as it was at the start when the block ends."""
        outer, self.frame = self.frame, _Frame()
        budget = items
        while budget > 0:
            budget -= self.item(budget)
        while self.frame.pushed:
            self.pop()
        self.frame = outer

    def item(self, budget: int) -> int:
        """One random item; returns how much of the budget it used."""
        r = self.rng.random()
        if r < 0.06 and budget >= 3:
            return self.if_block(budget)
        if r < 0.10 and budget >= 3 and not self.in_loop:
            return self.loop(budget)
        if r < 0.14 and budget >= 3 and self.call_depth < 2:
            return self.call(budget)
        choice = self.rng.choices(_ITEMS, weights=_WEIGHTS)[0]
        choice(self)
        return 1

    def if_block(self, budget: int) -> int:
        size = self.rng.randint(1, min(5, budget - 1))
        cc = self.rng.choice(list(CONDITIONS))
        skip = self.label()
        near = "{disp32} " if self.rng.random() < 0.3 else ""
        if self.rng.random() < 0.5:
            self.emit(f"{near}j{cc} {skip}", reads=CONDITIONS[cc])
            before = self.undef
            self.block(size)
            self.place(skip)
            self.undef |= before
            return size + 1
        other, end = skip, self.label()
        self.emit(f"{near}j{cc} {other}", reads=CONDITIONS[cc])
        before = self.undef
        self.block(size)
        self.emit(f"jmp {end}")
        after_then = self.undef
        self.undef = before
        self.place(other)
        self.block(size)
        self.place(end)
        self.undef |= after_then
        return 2 * size + 1

    def loop(self, budget: int) -> int:
        size = self.rng.randint(1, min(5, budget - 1))
        head = self.label()
        self.emit(f"movl ${self.rng.randint(1, 4)}, %r14d")
        self.undef |= CF  # the back edge brings whatever CF the body left (DEC keeps CF)
        self.place(head)
        self.in_loop = True
        self.block(size)
        self.in_loop = False
        self.emit("decl %r14d", defines=STATUS & ~CF)
        self.emit(f"jnz {head}", reads=ZF)
        return size + 1

    def call(self, budget: int) -> int:
        size = self.rng.randint(1, min(4, budget - 1))
        name = self.label("sub")
        if self.rng.random() < 0.7:
            self.emit(f"call {name}")
        else:
            target = self.free()
            self.emit(f"leaq {name}(%rip), %{target}")
            self.emit(f"call *%{target}")
        saved_out, saved_frame = self.out, self.frame
        self.out, self.frame = [f"{name}:"], _Frame()
        self.call_depth += 1
        framed = "rbp" not in self.reserved and self.rng.random() < 0.3
        if framed:
            self.emit(f"enter ${8 * self.rng.randint(0, 4)}, $0")
            self.reserved.add("rbp")
        self.block(size)
        if framed:
            self.emit("leave")
            self.reserved.discard("rbp")
        self.emit("ret")
        self.call_depth -= 1
        self.subs.append(self.out)
        self.out, self.frame = saved_out, saved_frame
        return size + 1

    def push(self) -> None:
        if self.frame.pushed >= 6:
            self.pop()
            return
        r = self.rng.random()
        if r < 0.5:
            self.emit(f"pushq %{self.free()}")
        elif r < 0.75:
            self.emit(f"pushq ${self.imm(32)}")
        else:
            self.emit(f"pushq {self.mem(64)}")
        self.frame.pushed += 1

    def pop(self) -> None:
        if not self.frame.pushed:
            self.push()
            return
        if self.rng.random() < 0.75:
            self.emit(f"popq %{self.free()}")
        else:
            self.emit(f"popq {self.mem(64)}")
        self.frame.pushed -= 1

    def source(self) -> str:
        lines = [
            f"/* guestdbg x86-64 fidelity program: seed {self.seed} */",
            "\t.code64",
            "\t.text",
            "\t.globl start",
            "start:",
            *self.out,
            *(line for sub in self.subs for line in sub),
            "text_end:",
            "\t.balign 4096",
            "data:",
            *_data_lines(self.rng),
            "\t.balign 4096",
            "stack:",
            f"\t.skip {STACK_SIZE}",
            "stack_top:",
            "",
        ]
        return "\n".join(lines)


def _data_lines(rng: random.Random) -> list[str]:
    words = [rng.getrandbits(64) for _ in range(DATA_SIZE // 8)]
    return [f"\t.quad {w:#x}" for w in words]


# -- the items -----------------------------------------------------------------------------------


def _binop(g: _Generator) -> None:
    w = g.rng.choice(WIDTHS)
    op = g.rng.choice(("add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"))
    logic = op in ("and", "or", "xor", "test")
    reads = CF if op in ("adc", "sbb") else 0
    s = SUFFIX[w]
    if g.rng.random() < 0.5:
        text = f"{op}{s} {g.src(w)}, {g.dst_reg(w)}"
    else:
        source = f"${g.imm(w)}" if g.rng.random() < 0.5 else g.dst_reg(w)
        text = f"{op}{s} {source}, {g.mem(w)}"
    lockable = op not in ("cmp", "test") and text.endswith(")")
    if lockable and g.rng.random() < 0.15:
        text = "lock " + text
    if logic:
        g.emit(text, defines=LOGIC, undefines=AF, reads=reads)
    else:
        g.emit(text, defines=STATUS, reads=reads)


def _unop(g: _Generator) -> None:
    w = g.rng.choice(WIDTHS)
    op = g.rng.choice(("not", "neg", "inc", "dec"))
    target = g.rm(w)
    lockable = target.endswith(")") and op != "neg"  # a known emulated-host bug (docstring)
    lock = "lock " if lockable and g.rng.random() < 0.15 else ""
    defines = {"not": 0, "neg": STATUS, "inc": STATUS & ~CF, "dec": STATUS & ~CF}[op]
    g.emit(f"{lock}{op}{SUFFIX[w]} {target}", defines=defines)


def _high_byte(g: _Generator) -> None:
    """AH/BH/CH/DH operands (no REX prefix may appear with them)."""
    a = g.rng.choice(_HIGH8 + _LOW8_LEGACY)
    b = g.rng.choice(_HIGH8)
    op = g.rng.choice(("mov", "add", "sub", "xor", "cmp", "xchg"))
    pair = (a, b) if g.rng.random() < 0.5 else (b, a)
    defines = {"mov": 0, "xchg": 0, "xor": LOGIC}.get(op, STATUS)
    g.emit(f"{op}b %{pair[0]}, %{pair[1]}", defines=defines, undefines=AF if op == "xor" else 0)


def _mul(g: _Generator) -> None:
    w = g.rng.choice(WIDTHS)
    kind = g.rng.random()
    undefined = SF | ZF | AF | PF
    if kind < 0.4 or w == 8:
        op = g.rng.choice(("mul", "imul"))
        g.emit(f"{op}{SUFFIX[w]} {g.rm(w)}", defines=CF | OF, undefines=undefined)
    elif kind < 0.7:
        source = g.dst_reg(w) if g.rng.random() < 0.6 else g.mem(w)
        g.emit(f"imul{SUFFIX[w]} {source}, {g.dst_reg(w)}", defines=CF | OF, undefines=undefined)
    else:
        source = g.dst_reg(w) if g.rng.random() < 0.6 else g.mem(w)
        text = f"imul{SUFFIX[w]} ${g.imm(min(w, 32))}, {source}, {g.dst_reg(w)}"
        g.emit(text, defines=CF | OF, undefines=undefined)


def _div(g: _Generator) -> None:
    w = g.rng.choice((32, 64))
    s = SUFFIX[w]
    divisor = g.free(("rax", "rdx"))
    d = reg(divisor, w)
    if g.rng.random() < 0.5:
        g.emit(f"or{s} $1, {d}", defines=LOGIC, undefines=AF)
        g.emit("xorl %edx, %edx", defines=LOGIC, undefines=AF)
        g.emit(f"div{s} {d}", undefines=STATUS)
    else:
        g.emit(f"shr{s} $1, {d}", defines=CF | OF | SF | ZF | PF, undefines=AF)
        g.emit(f"or{s} $1, {d}", defines=LOGIC, undefines=AF)
        g.emit("cltd" if w == 32 else "cqto")
        g.emit(f"idiv{s} {d}", undefines=STATUS)


def _shift(g: _Generator) -> None:
    op = g.rng.choice(("shl", "shr", "sar", "rol", "ror", "rcl", "rcr"))
    rotate = op in ("rol", "ror", "rcl", "rcr")
    reads = CF if op in ("rcl", "rcr") else 0
    r = g.rng.random()
    if r < 0.25 and op not in ("rcl", "rcr"):
        w = g.rng.choice((32, 64))
        # CL may mask to 0 (flags untouched): nothing becomes defined for sure
        g.emit(f"{op}{SUFFIX[w]} %cl, {g.rm(w)}", undefines=OF if rotate else AF | OF)
        return
    w = g.rng.choice(WIDTHS)
    count = 1 if r < 0.5 else g.rng.randint(1, w - 1)
    operand = f"${count}, " if r >= 0.5 or g.rng.random() < 0.5 else ""
    of = (OF, 0) if count == 1 else (0, OF)
    if rotate:
        defines, undefines = CF | of[0], of[1]
    else:
        defines, undefines = CF | SF | ZF | PF | of[0], AF | of[1]
    g.emit(f"{op}{SUFFIX[w]} {operand}{g.rm(w)}", defines, undefines, reads)


def _double_shift(g: _Generator) -> None:
    w = g.rng.choice((32, 64))
    count = g.rng.randint(1, w - 1)
    op = g.rng.choice(("shld", "shrd"))
    of = (OF, 0) if count == 1 else (0, OF)
    target = g.rm(w)
    while "(%rip)" in target:  # a known emulated-host bug (module docstring)
        target = g.rm(w)
    g.emit(
        f"{op}{SUFFIX[w]} ${count}, {g.dst_reg(w)}, {target}",
        defines=CF | SF | ZF | PF | of[0], undefines=AF | of[1],
    )  # fmt: skip


def _bit_test(g: _Generator) -> None:
    w = g.rng.choice((16, 32, 64))
    op = g.rng.choice(("bt", "bts", "btr", "btc"))
    undefined = OF | SF | AF | PF
    if g.rng.random() < 0.5:
        g.emit(f"{op}{SUFFIX[w]} ${g.rng.randrange(w)}, {g.rm(w)}", CF, undefined)
    else:  # a register bit offset into memory would reach past the data area
        g.emit(f"{op}{SUFFIX[w]} {g.dst_reg(w)}, {g.dst_reg(w)}", CF, undefined)


def _bit_scan(g: _Generator) -> None:
    w = g.rng.choice((16, 32, 64))
    source = g.free()
    g.emit(f"bts{SUFFIX[w]} ${g.rng.randrange(w)}, {reg(source, w)}", CF, OF | SF | AF | PF)
    op = g.rng.choice(("bsf", "bsr"))
    g.emit(f"{op}{SUFFIX[w]} {reg(source, w)}, {g.dst_reg(w)}", ZF, STATUS & ~ZF)


def _setcc(g: _Generator) -> None:
    cc = g.rng.choice(list(CONDITIONS))
    g.emit(f"set{cc} {g.rm(8)}", reads=CONDITIONS[cc])


def _cmov(g: _Generator) -> None:
    cc = g.rng.choice(list(CONDITIONS))
    w = g.rng.choice((16, 32, 64))
    source = g.dst_reg(w) if g.rng.random() < 0.6 else g.mem(w)
    g.emit(f"cmov{cc}{SUFFIX[w]} {source}, {g.dst_reg(w)}", reads=CONDITIONS[cc])


def _flags_observed(g: _Generator) -> None:
    r = g.rng.random()
    if r < 0.35:
        g.emit("pushfq", reads=STATUS)
        g.emit(f"popq %{g.free()}")
    elif r < 0.6:
        g.emit("pushfq", reads=STATUS)
        g.emit(f"xorq ${g.rng.getrandbits(12) & STATUS:#x}, (%rsp)", LOGIC, AF)
        g.emit("popfq", defines=STATUS)
    elif r < 0.8:
        g.emit("lahf", reads=STATUS & ~OF)
        if g.rng.random() < 0.5:
            g.emit(f"xorb ${g.rng.getrandbits(8) & 0xD5:#x}, %ah", LOGIC, AF)
            g.emit("sahf", defines=STATUS & ~OF)
    else:
        op = g.rng.choice(("clc", "stc", "cmc"))
        g.emit(op, defines=CF, reads=CF if op == "cmc" else 0)


def _mov(g: _Generator) -> None:
    w = g.rng.choice(WIDTHS)
    r = g.rng.random()
    s = SUFFIX[w]
    if r < 0.15:
        g.emit(f"movabsq ${g.value64():#x}, %{g.free()}")
    elif r < 0.45:
        g.emit(f"mov{s} {g.mem(w)}, {g.dst_reg(w)}")
    elif r < 0.75:
        source = f"${g.imm(w)}" if g.rng.random() < 0.4 else g.dst_reg(w)
        g.emit(f"mov{s} {source}, {g.mem(w)}")
    else:
        g.emit(f"mov{s} {g.src(w)}, {g.dst_reg(w)}")


def _extend(g: _Generator) -> None:
    op, sw, dw = g.rng.choice(
        (("movzbw", 8, 16), ("movzbl", 8, 32), ("movzbq", 8, 64), ("movzwl", 16, 32),
         ("movzwq", 16, 64), ("movsbw", 8, 16), ("movsbl", 8, 32), ("movsbq", 8, 64),
         ("movswl", 16, 32), ("movswq", 16, 64), ("movslq", 32, 64))
    )  # fmt: skip
    source = g.dst_reg(sw) if g.rng.random() < 0.6 else g.mem(sw)
    g.emit(f"{op} {source}, {g.dst_reg(dw)}")


def _convert(g: _Generator) -> None:
    g.emit(g.rng.choice(("cbtw", "cwtl", "cltq", "cwtd", "cltd", "cqto")))


def _exchange(g: _Generator) -> None:
    w = g.rng.choice(WIDTHS)
    s = SUFFIX[w]
    r = g.rng.random()
    if r < 0.35:
        g.emit(f"xchg{s} {g.dst_reg(w)}, {g.rm(w)}")
    elif r < 0.85:
        op = "xadd" if r < 0.6 else "cmpxchg"
        source, target = g.dst_reg(w), g.rm(w)
        lock = "lock " if target.endswith(")") and g.rng.random() < 0.3 else ""
        g.emit(f"{lock}{op}{s} {source}, {target}", defines=STATUS)
    else:
        g.emit(f"bswap {g.dst_reg(g.rng.choice((32, 64)))}")


def _lea(g: _Generator) -> None:
    w = g.rng.choice((16, 32, 64))
    base, index = g.rng.choice(_NAMES64), g.rng.choice([n for n in _NAMES64 if n != "rsp"])
    disp = g.rng.randrange(-(1 << 31), 1 << 31) if g.rng.random() < 0.5 else g.rng.randrange(256)
    scale = g.rng.choice((1, 2, 4, 8))
    g.emit(f"lea{SUFFIX[w]} {disp}(%{base},%{index},{scale}), {g.dst_reg(w)}")


def _nop(g: _Generator) -> None:
    g.emit(g.rng.choice(("nop", "nopl 0(%rax)", "nopw 0(%rax,%rax,1)", "xchgl %eax, %eax")))


def _string(g: _Generator) -> None:
    """MOVS/STOS/LODS/CMPS/SCAS, alone or repeated, inside the data area in either direction."""
    op = g.rng.choice(("movs", "stos", "lods", "cmps", "scas"))
    w = g.rng.choice(WIDTHS)
    size = w // 8
    count = g.rng.randint(0, 6)
    down = g.rng.random() < 0.3
    span = max(count, 1) * size
    start = g.rng.randrange(0, DATA_SIZE - span + 1)
    if down:
        start += span - size
    g.emit(f"leaq data+{start}(%rip), %rdi")
    source = g.rng.randrange(0, DATA_SIZE - span + 1) + (span - size if down else 0)
    g.emit(f"leaq data+{source}(%rip), %rsi")
    g.emit(f"movl ${count}, %ecx")
    g.emit("std" if down else "cld")
    compare = op in ("cmps", "scas")
    if g.rng.random() < 0.7:
        prefix = g.rng.choice(("repe ", "repne ")) if compare else "rep "
        # REP with RCX = 0 compares nothing and leaves the flags as they were
        g.place(g.label(REP_LABEL))
        g.emit(f"{prefix}{op}{SUFFIX[w]}", defines=STATUS if compare and count else 0)
    else:
        g.emit(f"{op}{SUFFIX[w]}", defines=STATUS if compare else 0)
    g.emit("cld")


def _stack(g: _Generator) -> None:
    if g.rng.random() < 0.55:
        g.push()
    else:
        g.pop()


_ITEMS: tuple[Callable[[_Generator], None], ...] = (
    _binop, _unop, _high_byte, _mul, _div, _shift, _double_shift, _bit_test, _bit_scan,
    _setcc, _cmov, _flags_observed, _mov, _extend, _convert, _exchange, _lea, _nop, _string,
    _stack,
)  # fmt: skip
_WEIGHTS = (14, 5, 2, 4, 1, 6, 2, 3, 1, 4, 4, 3, 10, 3, 1, 3, 2, 1, 2, 6)
