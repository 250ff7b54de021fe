"""Loading an x86-64 guest ELF and starting it in 64-bit long mode at CPL0, without firmware.

The same loader serves the real ``/dev/kvm`` and the emulated host, because it only uses the
VM/vCPU interface (``write_phys``, KVM_GET/SET_SREGS, KVM_SET_REGS): the recipe of
docs/reference/this-machine-kvm.md ("What a test suite on this host does") -
CR0 = PE|MP|ET|NE|WP|AM|PG,
CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = SCE|LME|LMA|NXE, CS = 0x10 (L=1, DPL 0), data segments
0x18, identity-mapped RAM. A guest that brings its own page tables and GDT names them with the
symbols ``pml4`` and ``gdt``/``gdt_end``; otherwise the loader writes them at
:data:`BOOT_TABLES` (an identity map of RAM in 2 MiB pages and a four-entry GDT). ``idt``/
``idt_end`` name the guest's IDT, ``stack_top`` its initial RSP.
"""

from __future__ import annotations

import pathlib
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from guestdbg.errors import BadAddress, InvalidRequest
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.vcpu import VcpuHandle, VmHandle

CODE64_SELECTOR = 0x10
DATA_SELECTOR = 0x18
CR0_PE_MP_ET_NE_WP_AM_PG = 0x80050033
CR4_PAE_OSFXSR_OSXMMEXCPT = 0x620
EFER_SCE_LME_LMA_NXE = 0xD01
RFLAGS_FIXED_1 = 0x2

BOOT_TABLES = 0x1000
"""PML4 here, PDPT +0x1000, PD +0x2000, GDT +0x3000: the loader's tables when the guest has
none. Guest images that rely on them start at 0x10000 or above."""
BOOT_TABLES_END = BOOT_TABLES + 0x4000
PAGE_2M = 2 << 20
PTE_PRESENT_WRITABLE = 0x3
PDE_LARGE = 0x80
GDT_ENTRIES = (0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF)
"""null, null, 0x10: code, L=1, DPL 0; 0x18: data, writable (the recipe's layout)."""


@dataclass(frozen=True)
class GuestImage:
    path: pathlib.Path
    entry: int
    symbols: dict[str, int]
    segments: tuple[tuple[int, bytes, int], ...]
    """(guest-physical address, file bytes, memory size) of each PT_LOAD segment."""

    def __getitem__(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise InvalidRequest(f"{self.path.name} has no symbol {name!r}") from None


def read_image(path: pathlib.Path | str) -> GuestImage:
    """The PT_LOAD segments, entry point and symbols of an x86-64 ELF. A file that cannot be
    read, is not an ELF, is cut short or has nothing to load is InvalidRequest, as on the BookE
    host (``guestdbg_booke.emuhost.loader.read_elf``)."""
    path = pathlib.Path(path)
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            if elf["e_machine"] != "EM_X86_64" or elf.elfclass != 64 or not elf.little_endian:
                raise InvalidRequest(f"{path.name} is {elf['e_machine']}, not an x86-64 ELF")
            segments = []
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or not seg["p_memsz"]:
                    continue
                data = seg.data()
                if len(data) != seg["p_filesz"]:
                    raise InvalidRequest(
                        f"{path.name} is cut short: a segment at {seg['p_paddr']:#x} has "
                        f"{len(data)} of its {seg['p_filesz']} bytes"
                    )
                segments.append((seg["p_paddr"], data, seg["p_memsz"]))
            symtab = elf.get_section_by_name(".symtab")
            symbols = (
                {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}
                if isinstance(symtab, SymbolTableSection)
                else {}
            )
            entry = elf["e_entry"]
    except (OSError, ELFError) as e:
        raise InvalidRequest(f"cannot load {path}: {e}") from e
    if not segments:
        raise InvalidRequest(f"{path} has no loadable segment")
    return GuestImage(path, entry, symbols, tuple(segments))


def load(vm: VmHandle, image: GuestImage) -> None:
    """Copy every PT_LOAD segment into guest RAM (zero-filling past the file bytes)."""
    for paddr, data, memsz in image.segments:
        vm.write_phys(paddr, data + bytes(max(0, memsz - len(data))))


def write_boot_tables(vm: VmHandle, ram_size: int) -> tuple[int, int, int]:
    """Identity map ``[0, ram_size)`` and a GDT at BOOT_TABLES; returns (cr3, gdt, limit)."""
    pages = (ram_size + PAGE_2M - 1) // PAGE_2M
    if not 0 < pages <= 512:
        raise InvalidRequest("the boot tables map between 2 MiB and 1 GiB of RAM")
    pml4, pdpt, pd, gdt = (BOOT_TABLES + i * 0x1000 for i in range(4))
    vm.write_phys(pml4, struct.pack("<Q", pdpt | PTE_PRESENT_WRITABLE))
    vm.write_phys(pdpt, struct.pack("<Q", pd | PTE_PRESENT_WRITABLE))
    vm.write_phys(
        pd,
        b"".join(
            struct.pack("<Q", i * PAGE_2M | PDE_LARGE | PTE_PRESENT_WRITABLE) for i in range(pages)
        ),
    )
    vm.write_phys(gdt, b"".join(struct.pack("<Q", d) for d in GDT_ENTRIES))
    return pml4, gdt, 8 * len(GDT_ENTRIES) - 1


def enter_long_mode(
    vcpu: VcpuHandle,
    layout: AbiLayout,
    *,
    cr3: int,
    gdt: tuple[int, int],
    idt: tuple[int, int],
) -> None:
    """KVM_SET_SREGS for 64-bit CPL0 with flat segments; ``gdt``/``idt`` are (base, limit)."""
    sregs = vcpu.get_sregs()
    ct = "struct kvm_sregs"

    def segment(name: str, selector: int, typ: int, db: int, long: int) -> None:
        for field, value in (
            ("base", 0), ("limit", 0xFFFFFFFF), ("selector", selector), ("type", typ),
            ("present", 1), ("dpl", 0), ("db", db), ("s", 1), ("l", long), ("g", 1),
            ("avl", 0), ("unusable", 0),
        ):  # fmt: skip
            layout.field(ct, name, field).put(sregs, value)

    segment("cs", CODE64_SELECTOR, 0xB, 0, 1)  # execute/read, accessed
    for name in ("ds", "es", "fs", "gs", "ss"):
        segment(name, DATA_SELECTOR, 0x3, 1, 0)  # read/write, accessed
    for table, (base, limit) in (("gdt", gdt), ("idt", idt)):
        layout.field(ct, table, "base").put(sregs, base)
        layout.field(ct, table, "limit").put(sregs, limit)
    for reg, value in (
        ("cr0", CR0_PE_MP_ET_NE_WP_AM_PG),
        ("cr3", cr3),
        ("cr4", CR4_PAE_OSFXSR_OSXMMEXCPT),
        ("efer", EFER_SCE_LME_LMA_NXE),
    ):
        layout.field(ct, reg).put(sregs, value)
    vcpu.set_sregs(bytes(sregs))


def start_at(vcpu: VcpuHandle, layout: AbiLayout, rip: int, rsp: int) -> None:
    """RIP and RSP set, RFLAGS with nothing but its fixed bit."""
    regs = vcpu.get_regs()
    for name, value in (("rip", rip), ("rsp", rsp), ("rflags", RFLAGS_FIXED_1)):
        layout.field("struct kvm_regs", name).put(regs, value)
    vcpu.set_regs(bytes(regs))


def boot(vm: VmHandle, image: GuestImage, ram_size: int) -> None:
    """Load ``image`` and put every vCPU at its entry point in long mode. A segment outside
    ``[0, ram_size)`` is BadAddress, raised before anything is written."""
    for paddr, _, memsz in image.segments:
        if paddr < 0 or paddr + memsz > ram_size:
            raise BadAddress(
                f"{image.path.name}: segment at {paddr:#x}+{memsz:#x} does not fit "
                f"{ram_size:#x} bytes of RAM"
            )
    own_tables = "pml4" in image.symbols and "gdt" in image.symbols
    if not own_tables:
        for paddr, _, memsz in image.segments:
            if paddr < BOOT_TABLES_END and paddr + memsz > BOOT_TABLES:
                raise BadAddress(
                    f"{image.path.name} overlaps the loader's boot tables at "
                    f"{BOOT_TABLES:#x}-{BOOT_TABLES_END:#x}; link it at 0x10000 or above"
                )
    load(vm, image)
    if own_tables:
        cr3 = image["pml4"]
        gdt = (image["gdt"], image["gdt_end"] - image["gdt"] - 1)
    else:
        cr3, gdt_base, gdt_limit = write_boot_tables(vm, ram_size)
        gdt = (gdt_base, gdt_limit)
    idt = (image["idt"], image["idt_end"] - image["idt"] - 1) if "idt" in image.symbols else (0, 0)
    rsp = image.symbols.get("stack_top", 0)
    layout = vm.layout
    for vcpu in vm.vcpus:
        enter_long_mode(vcpu, layout, cr3=cr3, gdt=gdt, idt=idt)
        start_at(vcpu, layout, image.entry, rsp)
