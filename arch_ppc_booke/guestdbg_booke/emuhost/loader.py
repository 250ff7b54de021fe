"""Loading a bare-metal ELF the way QEMU's ``ppce500`` loads ``-kernel`` (``board``).

The ELF's PT_LOAD segments go to their physical addresses (``p_paddr``, read by
:mod:`guestdbg.emuhost.image`); every vCPU then gets
the boot state of ``ppce500_cpu_reset``: PC = entry, MSR = 0 (a full MSR write, so MSR[GS] on
HV), r1 = 16 MiB - 8, r3 = device tree, r6 = ePAPR magic, r7 = initial map size, and TLB1 entry
0 mapping 0 -> 0 with all permissions and without IPROT (``mmubooke_create_initial_mapping``).

Difference from QEMU: QEMU starts only vCPU 0 and parks the others in the ePAPR spin table until
vCPU 0 releases them. Here every vCPU starts at the entry with the same registers; guests tell
themselves apart by reading PIR (= the vCPU id, as ``kvmppc_emulate_mfspr`` reports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guestdbg.emuhost.image import ElfImage
from guestdbg.emuhost.image import read_elf as read_image
from guestdbg.errors import BadAddress

from . import board

MAS1_VALID = 0x80000000
MAS3_ALL_PERMS = 0x3F  # UX SX UW SW UR SR


@dataclass(frozen=True)
class LoadedImage:
    elf: ElfImage

    @property
    def entry(self) -> int:
        return self.elf.entry

    @property
    def dt_base(self) -> int:
        # QEMU's load_elf reports the summed memory size of the loaded segments
        return board.dt_base(self.elf.low, self.elf.memsz)

    @property
    def map_tsize(self) -> int:
        return board.initial_map_tsize(self.dt_base + board.DTB_SIZE)


def read_elf(path: Path, ram_size: int, width: int = 32) -> LoadedImage:
    """A big-endian PowerPC image whose every segment fits ``ram_size`` bytes of RAM at 0
    (InvalidRequest for another file, BadAddress for one that does not fit). A 64-bit core
    (``width`` 64) also takes a 64-bit ELF (EM_PPC64), as ``qemu-system-ppc64`` does; its entry
    is the code address itself (a bare-metal ``_start``, no ELFv1 function descriptor)."""
    image = read_image(path)
    if width == 64 and image.elfclass == 64:
        image.require("a 64-bit big-endian PowerPC ELF", "EM_PPC64", 64, "big")
    else:
        image.require("a 32-bit big-endian PowerPC ELF", "EM_PPC", 32, "big")
    for addr, _, memsz in image.segments:
        if addr + memsz > ram_size:
            raise BadAddress(
                f"segment at {addr:#x}+{memsz:#x} does not fit {ram_size:#x} bytes of RAM"
            )
    return LoadedImage(image)
