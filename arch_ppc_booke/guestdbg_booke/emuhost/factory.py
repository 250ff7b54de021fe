"""The emulated hosts the BookE plugin offers (``guestdbg_emulated_hosts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guestdbg.arch import HostFactory
from guestdbg.vcpu import VmHandle

from .vm import EmulatedBookeVm


def _creator(core: str) -> Any:
    def create_vm(elf_path: str | Path, smp: int = 1, **options: Any) -> VmHandle:
        vm = EmulatedBookeVm(core, smp=smp, **options)
        vm.load_elf(elf_path)
        return vm

    return create_vm


_DESCRIPTIONS = {
    "e500mc": "e500mc under Unicorn with a model of Linux BookE-HV KVM (kvm_e500mc)",
    "e500v2": "e500v2 under Unicorn with a model of Linux BookE-PR KVM (kvm_e500v2)",
    "e5500": "e5500 (64-bit) under Unicorn with a model of Linux BookE-HV KVM (kvm_e500mc)",
    "e6500": "e6500 (64-bit, AltiVec) under Unicorn with a model of Linux BookE-HV KVM "
    "(kvm_e500mc)",
}

HOSTS = tuple(
    HostFactory(
        name=f"{core}-unicorn",
        arch="ppc_booke",
        core=core,
        description=description,
        create_vm=_creator(core),
    )
    for core, description in _DESCRIPTIONS.items()
)
