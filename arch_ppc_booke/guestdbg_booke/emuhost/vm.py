"""The emulated e500 KVM host's VM: guest RAM, vCPUs, and the VM-fd ioctls (``VmHandle``).

``EmulatedBookeVm(core="e500mc")`` models Linux BookE-HV (kvm_e500mc: guest state, MSRP, debug
interrupts in the debug class); ``core="e5500"`` and ``core="e6500"`` the same kernel module on
the 64-bit cores it also runs on (a 64-bit host kernel: 64-bit registers, EPCR, MSR[CM] on
interrupt delivery, AltiVec on e6500); ``core="e500v2"`` models BookE-PR (kvm_e500v2: the guest
in problem state, everything privileged emulated, debug interrupts in the critical class).
``sw_break_flavour`` picks what KVM_REG_PPC_DEBUG_INST reports and traps: "dddd00" (current
kernels, the illegal word 0x00dddd00) or "ehpriv" (the 2014 kernels' ``ehpriv 1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guestdbg.emuhost.vm import EmulatedVm
from guestdbg.errors import InvalidRequest, MigrationError
from guestdbg.kvm import constants as kc

from .. import abi
from . import board, kvm_msr, loader
from .vcpu import EmulatedBookeVcpu

KVM_CAP_PPC_BOOKE_SREGS = 62
KVM_CAP_PPC_OSI = 52
KVM_CAP_PPC_GET_PVINFO = 57
SNAPSHOT_FORMAT = "guestdbg-booke-emuhost/1"
CORES = ("e500mc", "e500v2", "e5500", "e6500")
SW_BREAK_FLAVOURS = ("dddd00", "ehpriv")
MAX_VCPUS = 64

# kvm_vm_ioctl_check_extension on BookE (docs/reference/kvm-debug-abi.md); KVM_CAP_READONLY_MEM
# is not among them: BookE KVM has no read-only memory slots (§11)
_CAPS = {
    kc.KVM_CAP_USER_MEMORY: 1,
    kc.KVM_CAP_SET_GUEST_DEBUG: 1,
    kc.KVM_CAP_ONE_REG: 1,
    kc.KVM_CAP_PPC_GUEST_DEBUG_SSTEP: 1,
    KVM_CAP_PPC_BOOKE_SREGS: 1,
    KVM_CAP_PPC_OSI: 1,
    KVM_CAP_PPC_GET_PVINFO: 1,
}
# check_memory_region_flags on BookE: dirty logging is accepted (and never logs), read-only
# slots are EINVAL (docs/reference/kvm-debug-abi.md §11)
_SLOT_FLAGS = kc.KVM_MEM_LOG_DIRTY_PAGES


class EmulatedBookeVm(EmulatedVm):
    def __init__(
        self,
        core: str = "e500mc",
        smp: int = 1,
        ram_size: int = board.DEFAULT_RAM_SIZE,
        sw_break_flavour: str = "dddd00",
    ) -> None:
        if core not in CORES:
            raise InvalidRequest(f"no emulated BookE host for core {core!r}; have {CORES}")
        if not 1 <= smp <= MAX_VCPUS:
            raise InvalidRequest(f"smp must be 1..{MAX_VCPUS}, not {smp}")
        if sw_break_flavour not in SW_BREAK_FLAVOURS:
            raise InvalidRequest(
                f"sw_break_flavour must be one of {SW_BREAK_FLAVOURS}, not {sw_break_flavour!r}"
            )
        if not 0 < ram_size <= board.HOSTIO_BASE or ram_size % board.PAGE_SIZE:
            raise InvalidRequest(
                f"ram_size {ram_size:#x} must be a multiple of 4 KiB up to {board.HOSTIO_BASE:#x}"
            )
        super().__init__(abi.layout(), _CAPS, _SLOT_FLAGS)
        self.core = core
        self.sw_break_flavour = sw_break_flavour
        self.pvr = board.PVR[core]
        self.svr = board.SVR[core]
        self.ram_size = ram_size
        self.memory.add_slot(0, ram_size)
        self._emulated = [EmulatedBookeVcpu(self, n) for n in range(smp)]
        self._add_vcpus(self._emulated)

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> EmulatedBookeVm:
        """A new VM holding the guest of ``snap`` (see ``snapshot``)."""
        _check_format(snap)
        vm = cls(snap["core"], len(snap["vcpus"]), snap["ram_size"], snap["sw_break_flavour"])
        vm.restore(snap)
        return vm

    @property
    def emulated_vcpus(self) -> list[EmulatedBookeVcpu]:
        return list(self._emulated)

    # -- boot -----------------------------------------------------------------------------------

    def load_elf(self, path: str | Path) -> int:
        """Load ``path`` and give every vCPU QEMU ppce500's ``-kernel`` boot state; returns the
        entry point."""
        image = loader.read_elf(Path(path), self.ram_size, board.WIDTH[self.core])
        image.elf.load(self.memory.write)
        map_size = 1024 << image.map_tsize
        for v in self._emulated:
            with v.mutex:
                v.changed()
                gprs = [0] * 32
                gprs[1] = board.BOOT_R1
                gprs[3] = image.dt_base
                gprs[6] = board.EPAPR_MAGIC
                gprs[7] = map_size
                v.engine.set_gprs(gprs)
                v.cpu.pc = image.entry
                kvm_msr.set_msr(v.arch, 0)
                # mmubooke_create_initial_mapping: MAS1 = V | TSIZE, no IPROT
                v.arch.tlb.set_tlb1(
                    0, loader.MAS1_VALID | (image.map_tsize << 7), 0, loader.MAS3_ALL_PERMS
                )
        return image.entry

    # -- migration ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The complete guest-visible state: RAM (non-zero pages), each vCPU's registers, the
        SPRs the guest reads without trapping, and the kernel's per-vCPU state (everything a VMM
        would carry through regs/sregs/ONE_REG, plus what only the kernel holds: pending
        interrupts, the debug register image, a half-served MMIO load)."""
        with self.stopped():
            return {
                "format": SNAPSHOT_FORMAT,
                "core": self.core,
                "ram_size": self.ram_size,
                "sw_break_flavour": self.sw_break_flavour,
                "ram": self.memory.nonzero_pages(),
                "vcpus": [v.save() for v in self._emulated],
            }

    def restore(self, snap: dict[str, Any]) -> None:
        _check_format(snap)
        if (snap["core"], snap["ram_size"], len(snap["vcpus"]), snap["sw_break_flavour"]) != (
            self.core,
            self.ram_size,
            len(self._emulated),
            self.sw_break_flavour,
        ):
            raise MigrationError(
                f"snapshot of a {snap['core']} VM with {len(snap['vcpus'])} vCPUs and "
                f"{snap['ram_size']:#x} bytes does not fit this VM"
            )
        with self.stopped():
            self.memory.load_pages({int(k): v for k, v in snap["ram"].items()})
            for v, d in zip(self._emulated, snap["vcpus"], strict=True):
                v.load(d)


def _check_format(snap: dict[str, Any]) -> None:
    if not isinstance(snap, dict) or snap.get("format") != SNAPSHOT_FORMAT:
        raise MigrationError(f"not a {SNAPSHOT_FORMAT} snapshot")
