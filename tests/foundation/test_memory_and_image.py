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
from guestdbg.emuhost.unicorn import UC_PROT_ALL, UC_PROT_READ, SlotMapper
from guestdbg.errors import BadAddress, InvalidRequest, KernelError
from guestdbg.kvm import constants as C
from guestdbg.vcpu import SlotInfo
from guestdbg_x86.emuhost.uc import new_x86_64


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
    changes: list[tuple[int, ...]] = []
    mem.on_slots_changed(lambda: changes.append(tuple(s.gpa for s in mem.slots)))
    mem.add_slot(4 * PAGE_SIZE, PAGE_SIZE)
    assert changes == [(0, 4 * PAGE_SIZE)]
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


def _regions(uc: object) -> list[tuple[int, int, int]]:
    """The engine's mapped ranges (first, last byte, permissions), adjacent ones merged."""
    out: list[tuple[int, int, int]] = []
    for lo, hi, perms in sorted(uc.mem_regions()):  # type: ignore[attr-defined]
        if out and out[-1][1] + 1 == lo and out[-1][2] == perms:
            out[-1] = (out[-1][0], hi, perms)
        else:
            out.append((lo, hi, perms))
    return out


def test_slots_split_over_one_buffer_keep_the_engine_mapping_and_a_deleted_slot_is_unmapped() -> (
    None
):
    """A slot is a window onto a host buffer: deleting it keeps the buffer, a slot re-created
    over the same bytes at the same address changes nothing in an engine, and a page left in
    no slot is not mapped (the guest meets whatever its host does outside RAM)."""
    mem = GuestMemory("little", valid_flags=C.KVM_MEM_READONLY)
    ram = mem.add_slot(0, 4 * PAGE_SIZE)
    uc = new_x86_64()
    mapper = SlotMapper(uc, mem, read_only_prot=UC_PROT_READ)
    assert _regions(uc) == [(0, 4 * PAGE_SIZE - 1, UC_PROT_ALL)]
    base = ram.address
    mem.write(0, b"A" * PAGE_SIZE * 4)
    mem.set_slot(SlotInfo(0, 0, 0, 0, 0))  # delete: the buffer stays
    assert mem.slots == () and len(mem.buffers) == 1
    with pytest.raises(BadAddress):
        mem.read(0, 1)
    mem.set_slot(SlotInfo(0, 0, 0, PAGE_SIZE, base))
    mem.set_slot(SlotInfo(1, 0, PAGE_SIZE, PAGE_SIZE, base + PAGE_SIZE))
    mem.set_slot(SlotInfo(2, 0, 3 * PAGE_SIZE, PAGE_SIZE, base + 3 * PAGE_SIZE))
    assert mem.read(0, 2 * PAGE_SIZE) == b"A" * 2 * PAGE_SIZE  # one read spans two slots
    assert mapper.sync()  # page 2 is in no slot now
    assert _regions(uc) == [
        (0, 2 * PAGE_SIZE - 1, UC_PROT_ALL),
        (3 * PAGE_SIZE, 4 * PAGE_SIZE - 1, UC_PROT_ALL),
    ]
    mem.set_slot(SlotInfo(1, 0, 0, 0, 0))
    mem.set_slot(SlotInfo(1, 0, PAGE_SIZE, 2 * PAGE_SIZE, base + PAGE_SIZE))
    assert mapper.sync()
    assert _regions(uc) == [(0, 4 * PAGE_SIZE - 1, UC_PROT_ALL)]
    regions = _regions(uc)
    mem.set_slot(SlotInfo(1, 0, 0, 0, 0))  # deleted and re-created over the same bytes ...
    mem.set_slot(SlotInfo(1, 0, PAGE_SIZE, 2 * PAGE_SIZE, base + PAGE_SIZE))
    assert not mapper.sync() and _regions(uc) == regions  # ... costs the engine nothing
    mem.set_slot(SlotInfo(1, 0, 0, 0, 0))
    mem.set_slot(SlotInfo(1, C.KVM_MEM_READONLY, PAGE_SIZE, PAGE_SIZE, base + PAGE_SIZE))
    assert mapper.sync()
    assert (PAGE_SIZE, 2 * PAGE_SIZE - 1, UC_PROT_READ) in _regions(uc)
    assert bytes(uc.mem_read(PAGE_SIZE, 4)) == b"AAAA"  # the engine reads the same bytes


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("overlap", errno.EEXIST),
        ("read-only flip", errno.EINVAL),
        ("resize", errno.EINVAL),
        ("misaligned gpa", errno.EINVAL),
        ("misaligned host address", errno.EINVAL),
        ("unknown flag", errno.EINVAL),
        ("delete a missing slot", errno.EINVAL),
        ("slot number out of range", errno.EINVAL),
    ],
)
def test_set_slot_refuses_as_kvm_main_c_does_and_changes_nothing(change: str, code: int) -> None:
    """The same refusals and errnos as tests/test_real_kvm.py measures on the real kernel."""
    mem = GuestMemory("little", valid_flags=C.KVM_MEM_READONLY)
    base = mem.add_slot(0, 4 * PAGE_SIZE).address
    bad = {
        "overlap": SlotInfo(1, 0, 3 * PAGE_SIZE, PAGE_SIZE, base),
        "read-only flip": SlotInfo(0, C.KVM_MEM_READONLY, 0, 4 * PAGE_SIZE, base),
        "resize": SlotInfo(0, 0, 0, 2 * PAGE_SIZE, base),
        "misaligned gpa": SlotInfo(1, 0, 8 * PAGE_SIZE + 8, PAGE_SIZE, base),
        "misaligned host address": SlotInfo(1, 0, 8 * PAGE_SIZE, PAGE_SIZE, base + 8),
        "unknown flag": SlotInfo(1, 0x80, 8 * PAGE_SIZE, PAGE_SIZE, base),
        "delete a missing slot": SlotInfo(5, 0, 0, 0, 0),
        "slot number out of range": SlotInfo(40000, 0, 8 * PAGE_SIZE, PAGE_SIZE, base),
    }[change]
    before = mem.slots
    with pytest.raises(KernelError) as info:
        mem.set_slot(bad)
    assert (info.value.ioctl, info.value.errno) == ("KVM_SET_USER_MEMORY_REGION", code)
    assert mem.slots == before


def test_set_slot_outside_the_vmms_buffers_is_an_invalid_request_and_changes_nothing() -> None:
    mem = GuestMemory("little")
    base = mem.add_slot(0, 4 * PAGE_SIZE).address
    before = mem.slots
    for info in (
        SlotInfo(1, 0, 8 * PAGE_SIZE, 2 * PAGE_SIZE, base + 3 * PAGE_SIZE),  # runs past its end
        SlotInfo(1, 0, 8 * PAGE_SIZE, PAGE_SIZE, 0x1000),  # nowhere near it
    ):
        with pytest.raises(InvalidRequest, match="not inside one host buffer"):
            mem.set_slot(info)
    assert mem.slots == before
    mem.set_slot(SlotInfo(0, 0, 0x100000, 4 * PAGE_SIZE, base))  # a move is allowed
    assert [(s.gpa, s.address) for s in mem.slots] == [(0x100000, base)]
