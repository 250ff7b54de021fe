"""Issue 16 on the emulated x86-64 host, with real gdb-multiarch: software breakpoints that
survive the guest rewriting its code. The host has read-only memory slots, as x86 KVM does, so
the session write-protects each page holding a trap word; the guest's stores to it come back as
KVM_EXIT_MMIO and are applied with the trap kept armed (guestdbg.session.write_guard).

The guest is ``tests/guests/x86/loader.S``: three rounds of copying a function over ``dest_fn``
and calling it; undebugged it ends with result 303."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

import pytest

from . import machines
from .test_gdb_e2e import gdb_batch, rips

pytestmark = pytest.mark.gdb


@pytest.fixture
def loader(x86_guests: Callable[[str], pathlib.Path]) -> pathlib.Path:
    return x86_guests("loader")


def test_a_breakpoint_set_before_the_loader_copies_fires_on_every_copied_call(
    loader: pathlib.Path,
) -> None:
    m = machines.emulated(loader)
    m.start_at("start")
    slots_before = m.vm.memory_slots()  # type: ignore[attr-defined]
    text = gdb_batch(
        m,
        loader,
        [
            "break *dest_fn",
            "hbreak *done",
            "continue",
            "x/i $pc",
            "info registers rip rdi",
            "continue",
            "info registers rip rdi",
            "continue",
            "info registers rip rdi",
            "continue",
            "info registers rip",
            "x/2xb dest_fn",
            "detach",
        ],
    )
    dest, done = m.sym("dest_fn"), m.sym("done")
    assert rips(text) == [dest, dest, dest, done], text
    assert [int(v, 16) for v in re.findall(r"^rdi\s+(0x[0-9a-f]+)", text, re.M)] == [0, 1, 2]
    # the instruction GDB shows under the breakpoint is the one the guest copied there
    assert re.search(r"=> 0x[0-9a-f]+ <dest_fn>:\s+lea\s+0x64\(%rdi\),%rax", text), text
    assert re.search(r"<dest_fn>:\s+0x48\s+0x8d", text), text  # lea's bytes, never 0xcc
    assert m.u64("result") == 303 and m.u64("rounds") == 3  # as an undebugged run
    assert m.vm.read_phys(dest, 4) == m.vm.read_phys(m.sym("template"), 4)
    assert m.vm.memory_slots() == slots_before  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["stepi", "continue"])
def test_a_guest_patching_the_instruction_under_a_breakpoint_runs_the_new_one(
    x86_guests: Callable[[str], pathlib.Path], how: str
) -> None:
    elf = x86_guests("loader")
    m = machines.emulated(elf)
    m.start_at("patch_store")
    text = gdb_batch(
        m,
        elf,
        [
            "break *patched",
            "hbreak *patch_done",
            "continue",
            "x/i $pc",
            how,
            "info registers rip rax",
            "detach",
        ],
    )
    assert re.search(r"=> 0x[0-9a-f]+ <patched>:\s+mov\s+\$0x2,%eax", text), text
    assert rips(text) == [m.sym("patch_done")], text
    assert re.search(r"^rax\s+0x2\b", text, re.M), text


def test_code_the_guest_reads_keeps_its_breakpoint_in_a_hardware_compare(
    loader: pathlib.Path,
) -> None:
    """A trap word is in guest memory, so a guest reading its own code under a software
    breakpoint reads the trap (no KVM can hide a word from the guest's loads and still run
    it): a loader copying from under ``break *template`` would copy the trap. ``monitor
    hwbreak`` serves that breakpoint by a debug register instead, so the copies are the
    guest's code and the result is an undebugged run's."""
    m = machines.emulated(loader)
    m.start_at("start")
    text = gdb_batch(
        m,
        loader,
        [
            "monitor hwbreak " + hex(m.sym("template")),
            "break *template",
            "break *copied",
            "hbreak *done",
            "continue",
            "x/2xb dest_fn",
            "delete 2",
            "continue",
            "info registers rip",
            "detach",
        ],
    )
    assert rips(text) == [m.sym("done")], text
    assert re.search(r"<dest_fn>:\s+0x48\s+0x8d", text), text  # the copy is lea, not a trap
    assert m.u64("result") == 303 and m.u64("rounds") == 3
