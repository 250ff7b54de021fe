"""Build, load and enter ``long_mode.S``: the x86-64 guest of the real-/dev/kvm tests and bench.

GNU as (through ``gcc -c``, which runs the C preprocessor a ``.S`` needs) and ld link the image at
guest-physical 0; the loader copies its PT_LOAD segments into guest RAM and returns the symbol
table, so callers name addresses instead of restating them. ``enter_long_mode`` is the recipe of
docs/reference/this-machine-kvm.md ("What a test suite on this host does"): 64-bit CPL0 straight
from reset.
"""

from __future__ import annotations

import pathlib
import subprocess

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from guestdbg.kvm.device import KvmVcpu, KvmVm
from guestdbg.kvm.uapi import AbiLayout

SOURCE = pathlib.Path(__file__).with_name("long_mode.S")
RAM_SIZE = 2 << 20
"""The guest's page tables map exactly one 2 MiB page at 0."""

CODE64_SELECTOR, DATA_SELECTOR = 0x10, 0x18
CR0_PE_MP_ET_NE_WP_AM_PG = 0x80050033
CR4_PAE_OSFXSR_OSXMMEXCPT = 0x620
EFER_SCE_LME_LMA_NXE = 0xD01
RFLAGS_FIXED_1 = 0x2


def build(out_dir: pathlib.Path) -> pathlib.Path:
    obj, elf = out_dir / "long_mode.o", out_dir / "long_mode.elf"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(SOURCE)], check=True)
    subprocess.run(
        ["ld", "-N", "-Ttext=0", "-e", "step_start", "--build-id=none",
         "--no-warn-rwx-segments", "-o", str(elf), str(obj)],
        check=True,
    )  # fmt: skip
    return elf


def load(vm: KvmVm, elf_path: pathlib.Path) -> dict[str, int]:
    """Copy the image into guest RAM; returns its symbols (name -> guest address)."""
    with elf_path.open("rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                vm.write_phys(seg["p_paddr"], seg.data())
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        return {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}


def enter_long_mode(vcpu: KvmVcpu, layout: AbiLayout, sym: dict[str, int]) -> None:
    sregs = vcpu.get_sregs()
    ctype = "struct kvm_sregs"

    def segment(name: str, selector: int, typ: int, db: int, long: int) -> None:
        for field, value in (
            ("base", 0), ("limit", 0xFFFFFFFF), ("selector", selector), ("type", typ),
            ("present", 1), ("dpl", 0), ("db", db), ("s", 1), ("l", long), ("g", 1),
            ("avl", 0), ("unusable", 0),
        ):  # fmt: skip
            layout.field(ctype, name, field).put(sregs, value)

    segment("cs", CODE64_SELECTOR, 0xB, 0, 1)  # execute/read, accessed
    for name in ("ds", "es", "fs", "gs", "ss"):
        segment(name, DATA_SELECTOR, 0x3, 1, 0)  # read/write, accessed
    for table in ("gdt", "idt"):
        layout.field(ctype, table, "base").put(sregs, sym[table])
        layout.field(ctype, table, "limit").put(sregs, sym[f"{table}_end"] - sym[table] - 1)
    for reg, value in (
        ("cr0", CR0_PE_MP_ET_NE_WP_AM_PG),
        ("cr3", sym["pml4"]),
        ("cr4", CR4_PAE_OSFXSR_OSXMMEXCPT),
        ("efer", EFER_SCE_LME_LMA_NXE),
    ):
        layout.field(ctype, reg).put(sregs, value)
    vcpu.set_sregs(bytes(sregs))


def start_at(vcpu: KvmVcpu, layout: AbiLayout, sym: dict[str, int], symbol: str) -> None:
    """RIP at ``symbol``, RSP at the top of the guest stack, RFLAGS with nothing set."""
    regs = vcpu.get_regs()
    state = (("rip", sym[symbol]), ("rflags", RFLAGS_FIXED_1), ("rsp", sym["stack_top"]))
    for name, value in state:
        layout.field("struct kvm_regs", name).put(regs, value)
    vcpu.set_regs(bytes(regs))
