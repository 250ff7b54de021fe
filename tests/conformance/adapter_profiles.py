"""The adapter kit's profiles of the adapters in the repository: the emulated e500mc and x86-64
hosts and ``guestdbg.kvm.device`` on this machine's ``/dev/kvm`` (the adapters the examples use),
each running the examples' counting guest (``examples/guests/*_count.S``). The raw-ioctl
adapter's profile is the example's own (``examples/raw_kvm_adapter.py``).
"""

from __future__ import annotations

import pathlib

from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason
from guestdbg.plugins import default_registry
from guestdbg.testing import AdapterProfile, AdapterUnavailable
from guestdbg.testing.build_dir import build_dir
from guestdbg.vcpu import VmHandle
from guestdbg_booke.guests import build as build_ppc
from guestdbg_x86 import abi, boot
from guestdbg_x86.guests.build import build as build_x86

GUESTS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "guests"
X86_RAM = 4 << 20
E500_RAM = 64 << 20
PAGE = 4096


def _x86_guest() -> pathlib.Path:
    return build_x86(GUESTS / "x86_count.S", build_dir("x86"))


def emulated_e500mc() -> AdapterProfile:
    elf = build_ppc(GUESTS / "e500mc_count.S", build_dir("ppc_booke"))
    host = default_registry().emulated_host("e500mc")
    return AdapterProfile(
        make_vm=lambda: host.create_vm(str(elf)),
        pc_field="pc",
        scratch=(E500_RAM - PAGE, PAGE),
        outside_ram=0xF0000000,
        arch="e500mc",
    )


def emulated_x86() -> AdapterProfile:
    elf = _x86_guest()
    host = default_registry().emulated_host("x86_64-unicorn")
    return AdapterProfile(
        make_vm=lambda: host.create_vm(elf, ram_size=X86_RAM),
        pc_field="rip",
        scratch=(X86_RAM - PAGE, PAGE),
        outside_ram=0x10000000,
        arch="x86",
    )


def kvm_device() -> AdapterProfile:
    """``guestdbg.kvm.device`` on this machine's /dev/kvm, as examples/vmm_threads.py makes it."""
    if machine_kvm_arch() != "x86_64":
        raise AdapterUnavailable(f"needs an x86-64 /dev/kvm; this machine is {machine_kvm_arch()}")
    layout = abi.layout()
    if (reason := unusable_reason(layout)) is not None:
        raise AdapterUnavailable(reason)
    image = boot.read_image(_x86_guest())
    owners: dict[int, Kvm] = {}

    def make_vm() -> VmHandle:
        kvm = Kvm(layout)
        try:
            vm = kvm.create_vm()
            vm.add_memory(0, X86_RAM)
            vm.create_vcpu()
            vm.create_vcpu()
            boot.boot(vm, image, X86_RAM)
        except BaseException:
            kvm.close()
            raise
        owners[id(vm)] = kvm
        return vm

    return AdapterProfile(
        make_vm=make_vm,
        pc_field="rip",
        scratch=(X86_RAM - PAGE, PAGE),
        outside_ram=0x10000000,
        release=lambda vm: owners.pop(id(vm)).close(),
        arch="x86",
    )
