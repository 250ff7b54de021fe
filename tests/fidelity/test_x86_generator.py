"""The x86-64 program generator: one seed, one program; every program assembles with GNU as/ld
and halts; over a few dozen seeds every kind of instruction it promises appears."""

from __future__ import annotations

import pathlib
import re

import pytest

from guestdbg.kvm import constants as C
from guestdbg_x86 import boot
from guestdbg_x86.fidelity.generator import DATA_SIZE, generate
from guestdbg_x86.fidelity.hosts import emulated

PROMISED = {
    "add", "adc", "sub", "sbb", "and", "or", "xor", "not", "neg", "inc", "dec", "imul", "mul",
    "div", "idiv", "shl", "shr", "sar", "rol", "ror", "rcl", "rcr", "shld", "shrd", "bt", "bts",
    "btr", "btc", "bsf", "bsr", "set", "cmov", "lea", "movz", "movs", "xchg", "xadd", "cmpxchg",
    "bswap", "push", "pop", "pushfq", "popfq", "lahf", "sahf", "call", "ret", "enter", "leave",
    "cmp", "test", "j", "jmp", "rep", "repe", "repne", "stos", "lods", "scas", "cmps", "lock",
    "hlt", "cqto", "cltq",
}  # fmt: skip


def test_one_seed_gives_one_program() -> None:
    assert generate(5).source == generate(5).source
    assert generate(5).source != generate(6).source
    assert generate(5, length=10).source != generate(5).source


def test_programs_assemble_and_halt_on_the_emulated_host(tmp_path: pathlib.Path) -> None:
    machine = emulated()
    for seed in range(8):
        program = generate(seed)
        image = boot.read_image(program.build(tmp_path))
        layout = program.layout(image.symbols, image.entry)
        assert layout.data[1] - layout.data[0] == DATA_SIZE
        assert layout.text[0] == layout.entry < layout.halted <= layout.text[1]
        machine.load(image, 0)
        assert machine.vcpu.run() == C.KVM_EXIT_HLT, f"seed {seed}"
        rip = int.from_bytes(machine.vcpu.get_regs()[8 * 16 : 8 * 17], "little")
        assert rip == layout.halted, f"seed {seed}"


@pytest.mark.parametrize("mnemonic", sorted(PROMISED))
def test_every_promised_instruction_appears_within_forty_seeds(mnemonic: str) -> None:
    seen = _mnemonics(40)
    assert any(m == mnemonic or m.startswith(mnemonic) for m in seen), mnemonic


def _mnemonics(seeds: int, cache: dict[int, set[str]] = {}) -> set[str]:  # noqa: B006
    if seeds not in cache:
        found: set[str] = set()
        for seed in range(seeds):
            for line in generate(seed).source.splitlines():
                m = re.match(r"\t(?:\{disp32\} )?([a-z]+)", line)
                if m:
                    found.add(m.group(1))
        cache[seeds] = found
    return cache[seeds]
