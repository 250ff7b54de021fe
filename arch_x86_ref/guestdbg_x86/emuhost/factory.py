"""The emulated x86-64 host as a :class:`guestdbg.arch.HostFactory` (``guestdbg_emulated_hosts``).

``create_vm(elf_path, smp=1, ram_size=..., kernel_caps=None)`` builds the VM, loads the ELF and
puts every vCPU at its entry point in 64-bit long mode at CPL0 (:mod:`guestdbg_x86.boot`), halted
until the first KVM_RUN.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from guestdbg.arch import HostFactory

from .. import boot
from .vm import EmuX86Vm

DEFAULT_RAM = 4 << 20


def create_vm(
    elf_path: str | pathlib.Path,
    smp: int = 1,
    *,
    ram_size: int = DEFAULT_RAM,
    kernel_caps: Mapping[int, int] | None = None,
) -> EmuX86Vm:
    image = boot.read_image(elf_path)
    vm = EmuX86Vm(ram_size, smp, kernel_caps)
    boot.boot(vm, image, ram_size)
    return vm


HOST = HostFactory(
    name="x86_64-unicorn",
    arch="x86",
    core="x86_64",
    description="x86-64 long mode on Unicorn under a model of Linux KVM x86 guest debugging "
    "(x86.c, vmx.c exits)",
    create_vm=create_vm,
)
