"""Guest memory of the emulated hosts (KVM memory slots over shared buffers) and the tree's one
ELF reader."""

from __future__ import annotations

import errno
import pathlib
import subprocess

import pytest
from x86 import machines

from guestdbg.demo import elf_info
from guestdbg.emuhost.image import read_elf, symbols
from guestdbg.emuhost.memory import PAGE_SIZE, GuestMemory
from guestdbg.errors import BadAddress, InvalidRequest, KernelError


def test_slots_refuse_overlap_unaligned_and_flags_and_accesses_span_adjacent_slots() -> None:
    mem = GuestMemory("big")
    first = mem.add_slot(0, 2 * PAGE_SIZE)
    with pytest.raises(InvalidRequest, match="overlaps memory slot 0"):
        mem.add_slot(PAGE_SIZE, PAGE_SIZE)
    with pytest.raises(InvalidRequest):
        mem.add_slot(3 * PAGE_SIZE + 1, PAGE_SIZE)
    with pytest.raises(KernelError) as info:
        mem.add_slot(4 * PAGE_SIZE, PAGE_SIZE, flags=2)
    assert (info.value.ioctl, info.value.errno) == ("KVM_SET_USER_MEMORY_REGION", errno.EINVAL)
    second = mem.add_slot(2 * PAGE_SIZE, PAGE_SIZE)
    assert (first.slot, second.slot, mem.size) == (0, 1, 3 * PAGE_SIZE)
    mem.write(2 * PAGE_SIZE - 2, b"\x12\x34\x56\x78")
    assert mem.uint(2 * PAGE_SIZE - 2, 4) == 0x12345678
    assert bytes(second.view[:2]) == b"\x56\x78"


def test_an_access_leaving_ram_anywhere_changes_nothing_and_notifies_no_one() -> None:
    mem = GuestMemory("little")
    mem.add_slot(0, PAGE_SIZE)
    seen: list[tuple[int, int]] = []
    mem.on_write(lambda lo, hi: seen.append((lo, hi)))
    with pytest.raises(BadAddress):
        mem.write(PAGE_SIZE - 2, b"abcd")
    with pytest.raises(BadAddress):
        mem.read(-1, 2)
    assert mem.read(PAGE_SIZE - 2, 2) == b"\0\0" and seen == []
    mem.write(8, b"xy")
    mem.write(16, b"z", notify=False)  # the kernel model's own write
    assert seen == [(8, 10)]


def test_engines_see_every_slot_and_snapshots_round_trip() -> None:
    mem = GuestMemory("little")
    mem.add_slot(0, PAGE_SIZE)
    mapped: list[int] = []
    mem.on_slot(lambda s: mapped.append(s.gpa))
    mem.add_slot(4 * PAGE_SIZE, PAGE_SIZE)
    assert mapped == [0, 4 * PAGE_SIZE]
    mem.write(4 * PAGE_SIZE + 5, b"q")
    pages = mem.nonzero_pages()
    assert list(pages) == [4]
    mem.write(0, b"junk")
    mem.load_pages(pages)
    assert mem.read(0, 4) == bytes(4) and mem.read(4 * PAGE_SIZE + 5, 1) == b"q"
    with pytest.raises(BadAddress):
        mem.load_pages({2: bytes(PAGE_SIZE)})  # no RAM there: refused before anything changes
    assert mem.read(4 * PAGE_SIZE + 5, 1) == b"q"


def test_the_elf_reader_gives_segments_entry_and_symbols_and_refuses_other_machines(
    tmp_path: pathlib.Path,
) -> None:
    elf = machines.build("precise_stop", tmp_path)
    image = read_elf(elf)
    assert (image.machine, image.elfclass, image.byteorder) == ("EM_X86_64", 64, "little")
    assert image.entry == image["start"] == symbols(elf)["start"] == elf_info.symbols(elf)["start"]
    assert image.low == 0x10000 and image.memsz >= image["stack_top"] - 0x10000
    image.require("an x86-64 ELF", "EM_X86_64", 64, "little")
    with pytest.raises(InvalidRequest, match="not a 32-bit big-endian PowerPC ELF"):
        image.require("a 32-bit big-endian PowerPC ELF", "EM_PPC", 32, "big")
    with pytest.raises(InvalidRequest, match="has no symbol 'nowhere'"):
        image["nowhere"]
    written: dict[int, bytes] = {}
    image.load(written.__setitem__)
    assert sum(len(d) for d in written.values()) == image.memsz


def test_unreadable_files_and_files_without_symbols_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot load"):
        read_elf(tmp_path / "missing.elf")
    bogus = tmp_path / "bogus.elf"
    bogus.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(InvalidRequest):
        read_elf(bogus)
    stripped = tmp_path / "stripped.elf"
    subprocess.run(["strip", "-o", stripped, machines.build("precise_stop", tmp_path)], check=True)
    with pytest.raises(InvalidRequest, match="no symbol table"):
        symbols(stripped)
