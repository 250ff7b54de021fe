"""Loading a bare-metal ELF the way QEMU's ``ppce500`` loads ``-kernel`` (fact sheet: board.py).

The ELF's PT_LOAD segments go to their physical addresses (``p_paddr``); every vCPU then gets
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

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from guestdbg.errors import BadAddress, InvalidRequest

from . import board

EM_PPC = "EM_PPC"
MAS1_VALID = 0x80000000
MAS3_ALL_PERMS = 0x3F  # UX SX UW SW UR SR


@dataclass(frozen=True)
class LoadedImage:
    entry: int
    low: int
    size: int
    segments: tuple[tuple[int, bytes, int], ...]
    """(physical address, file bytes, memory size) per PT_LOAD segment."""

    @property
    def dt_base(self) -> int:
        return board.dt_base(self.low, self.size)

    @property
    def map_tsize(self) -> int:
        return board.initial_map_tsize(self.dt_base + board.DTB_SIZE)


def read_elf(path: Path) -> LoadedImage:
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf.elfclass != 32 or elf.little_endian or elf["e_machine"] != EM_PPC:
                raise InvalidRequest(f"{path} is not a 32-bit big-endian PowerPC ELF")
            segs = []
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                    segs.append((seg["p_paddr"], seg.data(), seg["p_memsz"]))
            entry = elf["e_entry"]
    except (OSError, ELFError) as e:
        raise InvalidRequest(f"cannot load {path}: {e}") from e
    if not segs:
        raise InvalidRequest(f"{path} has no loadable segment")
    low = min(s[0] for s in segs)
    # QEMU's load_elf reports the summed memory size of the loaded segments
    size = sum(s[2] for s in segs)
    return LoadedImage(entry, low, size, tuple(segs))


def check_fits(image: LoadedImage, ram_size: int) -> None:
    for addr, _, memsz in image.segments:
        if addr + memsz > ram_size:
            raise BadAddress(
                f"segment at {addr:#x}+{memsz:#x} does not fit {ram_size:#x} bytes of RAM"
            )
