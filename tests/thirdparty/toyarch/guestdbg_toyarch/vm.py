"""One toy VM: guest RAM from address 0, its vCPUs, and what the toy kernel reports.

Implements :class:`guestdbg.vcpu.VmHandle`. There is one memory slot, ``[0, ram_size)``;
anything outside it is BadAddress for the VMM and a bus exception for the guest.
"""

from __future__ import annotations

import errno
import pathlib

from guestdbg.arch import HostFactory
from guestdbg.errors import BadAddress, InvalidRequest, KernelError
from guestdbg.kvm import constants as C
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.vcpu import VcpuHandle

from . import abi, isa
from .vcpu import HW_BREAKPOINTS, ToyVcpu

DEFAULT_RAM = 64 << 10
CAPS = {
    C.KVM_CAP_USER_MEMORY: 1,
    C.KVM_CAP_SET_GUEST_DEBUG: 1,
    C.KVM_CAP_ONE_REG: 1,
    C.KVM_CAP_GUEST_DEBUG_HW_BPS: HW_BREAKPOINTS,
    C.KVM_CAP_GUEST_DEBUG_HW_WPS: 1,
}


class ToyVm:
    def __init__(self, ram_size: int = DEFAULT_RAM, smp: int = 1) -> None:
        if ram_size <= 0 or ram_size % 4096:
            raise InvalidRequest("toy guest RAM must be a positive multiple of 4096 bytes")
        if not 1 <= smp <= 8:
            raise InvalidRequest(f"the toy host runs 1 to 8 vCPUs, not {smp}")
        self.ram = bytearray(ram_size)
        self._vcpus = [ToyVcpu(self, n) for n in range(smp)]

    @property
    def layout(self) -> AbiLayout:
        return abi.layout()

    @property
    def vcpus(self) -> list[VcpuHandle]:
        return list(self._vcpus)

    def check_extension(self, cap: int) -> int:
        return CAPS.get(cap, 0)

    def enable_cap(self, cap: int, *args: int) -> None:
        raise KernelError("KVM_ENABLE_CAP", errno.EINVAL, f"capability {cap}")

    def _check(self, gpa: int, size: int) -> None:
        if size < 0 or gpa < 0 or gpa + size > len(self.ram):
            raise BadAddress(f"guest-physical {gpa:#x}+{size:#x} is not all guest RAM")

    def read_phys(self, gpa: int, size: int) -> bytes:
        self._check(gpa, size)
        return bytes(self.ram[gpa : gpa + size])

    def write_phys(self, gpa: int, data: bytes) -> None:
        self._check(gpa, len(data))
        self.ram[gpa : gpa + len(data)] = data

    def load(self, source: str, entry: str = "_start") -> dict[str, int]:
        """Assemble ``source`` at 0, copy it into RAM, and put every vCPU at ``entry``."""
        image, labels = isa.assemble(source)
        if entry not in labels:
            raise InvalidRequest(f"the toy guest has no {entry!r} label")
        self.write_phys(0, image)
        for v in self._vcpus:
            v.cpu.pc = labels[entry]
        return labels


def create_vm(
    source_path: str | pathlib.Path, smp: int = 1, *, ram_size: int = DEFAULT_RAM
) -> ToyVm:
    """The factory's ``create_vm``: the toy has no ELF, so the "ELF" is toy assembly source."""
    vm = ToyVm(ram_size, smp)
    vm.load(pathlib.Path(source_path).read_text())
    return vm


HOST = HostFactory(
    name="toy-python",
    arch="toy",
    core="toy1",
    description="the toy CPU in pure Python under a model of a toy KVM's guest debugging",
    create_vm=create_vm,
)
