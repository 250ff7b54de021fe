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


HOSTS = (
    HostFactory(
        name="e500mc-unicorn",
        arch="ppc_booke",
        core="e500mc",
        description="e500mc under Unicorn with a model of Linux BookE-HV KVM (kvm_e500mc)",
        create_vm=_creator("e500mc"),
    ),
    HostFactory(
        name="e500v2-unicorn",
        arch="ppc_booke",
        core="e500v2",
        description="e500v2 under Unicorn with a model of Linux BookE-PR KVM (kvm_e500v2)",
        create_vm=_creator("e500v2"),
    ),
)
