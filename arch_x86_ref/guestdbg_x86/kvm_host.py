"""Booting a bare-metal x86-64 guest ELF on this machine's real ``/dev/kvm``
(``guestdbg_kvm_hosts``; ``guestdbg serve --host kvm``).

The same loader as the emulated host (:mod:`guestdbg_x86.boot`): the ELF's PT_LOAD segments in
RAM from guest-physical 0, identity page tables and a GDT at 0x1000 unless the guest brings its
own, every vCPU in 64-bit long mode at CPL0 at the entry point. Guests link at 0x10000 or above.
"""

from __future__ import annotations

import pathlib

from guestdbg.arch import HostFactory
from guestdbg.kvm.device import Kvm, KvmVm

from . import abi, boot

DEFAULT_RAM = 4 << 20


def create_vm(
    elf_path: str | pathlib.Path,
    smp: int = 1,
    *,
    ram_size: int = DEFAULT_RAM,
    device: str = "/dev/kvm",
) -> KvmVm:
    """KVM_CREATE_VM with ``ram_size`` bytes at 0 and ``smp`` vCPUs, the guest loaded and every
    vCPU at its entry point. The VM keeps its ``/dev/kvm`` handle open for as long as the
    process runs; everything made before a failure is closed again."""
    image = boot.read_image(elf_path)  # before anything is opened: a bad ELF opens nothing
    kvm = Kvm(abi.layout(), device)
    try:
        vm = kvm.create_vm()
        vm.add_memory(0, ram_size)
        for _ in range(smp):
            vm.create_vcpu()
        boot.boot(vm, image, ram_size)
    except BaseException:
        kvm.close()
        raise
    return vm


HOST = HostFactory(
    name="x86_64-kvm",
    arch="x86",
    core="x86_64",
    description="this machine's /dev/kvm, the guest booted in 64-bit long mode at CPL0",
    create_vm=create_vm,
)
