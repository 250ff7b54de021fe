"""The emulated board: where RAM, the host-I/O window and the boot state are.

The layout copies what QEMU's ``ppce500`` machine gives a ``-kernel`` ELF (``hw/ppc/e500.c``,
``ppce500_init`` and ``ppce500_cpu_reset``), so one guest ELF runs unchanged under QEMU and under
the emulated host:

* RAM at guest-physical 0; the ELF is loaded at its physical addresses.
* r1 = 16 MiB - 8, r3 = the device-tree address, r6 = ePAPR magic, r7 = the size of the initial
  mapping, everything else 0; PC = the ELF entry, MSR = 0.
* One TLB1 entry (entry 0) maps 0 -> 0, large enough to cover the device tree
  (``booke206_initial_map_tsize``), 64 MiB for small guests.

The device-tree address follows QEMU: ``(lowest load address + image size + DTC_LOAD_PAD) &
~DTC_PAD_MASK``. No device tree is written (the guests here do not read one); r3 only has to
agree with QEMU for the differential test. QEMU's tree is a few KiB; ``DTB_SIZE`` stands in for
it when sizing the initial mapping.

Host I/O: guest-physical addresses outside RAM are MMIO and leave KVM_RUN as KVM_EXIT_MMIO, as
on real KVM. Guests signal the host through the window at ``HOSTIO_BASE`` (one 4 KiB page). On
QEMU ``ppce500`` nothing is mapped at physical 0x0_E000_0000 (CCSR, PCI and the platform bus sit
above 4 GiB), so the same store is silently dropped there; the guest maps the page with a TLB1
entry first, as it must on both hosts (``tests/guests/ppc/hostio.inc``).
"""

from __future__ import annotations

MiB = 1 << 20
DEFAULT_RAM_SIZE = 64 * MiB
PAGE_SIZE = 4096

HOSTIO_BASE = 0xE0000000
HOSTIO_SIZE = 0x1000
HOSTIO_DONE = HOSTIO_BASE + 0x0
"""A guest stores its result word here when it has finished (convention of the test guests)."""
HOSTIO_CHECKPOINT = HOSTIO_BASE + 0x4
"""A guest stores a checkpoint number here and continues after the host resumes it."""

STUB_BASE = 0xFFFFE000
"""A page the engine keeps for its own SPR access stubs; not guest memory, not MMIO."""

EPAPR_MAGIC = 0x45504150
BOOT_R1 = 16 * MiB - 8
DTC_LOAD_PAD = 0x1800000
DTC_PAD_MASK = 0xFFFFF
DTB_SIZE = 0x2000

# PVR/SVR of the modelled cores (QEMU's CPU models; the kernel reports the host's mfspr values).
# e5500/e6500: QEMU's CPU_POWERPC_e5500/e6500 and its POWERPC_SVR_E500 (target/ppc/cpu-models.h).
PVR = {"e500mc": 0x80230020, "e500v2": 0x80210022, "e5500": 0x80240020, "e6500": 0x80400020}
SVR = {"e500mc": 0x82000020, "e500v2": 0x80340011, "e5500": 0x40000000, "e6500": 0x40000000}
WIDTH = {"e500mc": 32, "e500v2": 32, "e5500": 64, "e6500": 64}
"""Register width of each core, and the width of ``unsigned long`` in the KVM host kernel that
runs it: e5500/e6500 hosts run a 64-bit kernel (``CONFIG_64BIT``), e500mc/e500v2 a 32-bit one."""
ALTIVEC = frozenset({"e6500"})
"""Cores with an AltiVec unit (``CPU_FTR_ALTIVEC``)."""


def dt_base(low: int, size: int) -> int:
    """Where QEMU puts the device tree for an image at ``low`` of ``size`` bytes."""
    return (low + size + DTC_LOAD_PAD) & ~DTC_PAD_MASK & 0xFFFFFFFF


def initial_map_tsize(dt_end: int) -> int:
    """TLB TSIZE (2**n KiB) of the boot mapping: covers 0..dt_end, rounded up to an even size
    (``booke206_initial_map_tsize``: "e500v2 can only do even TLB size bits")."""
    ps = (dt_end // 1024).bit_length() - 1 + 1
    return ps + 1 if ps & 1 else ps


def initial_map_size(dt_end: int) -> int:
    return 1024 << initial_map_tsize(dt_end)
