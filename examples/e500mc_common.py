"""What the e500mc examples share: the guest build and the VMM's device model.

The guest (examples/guests/e500mc_vmm.S) is assembled by the PowerPC GNU binutils through
:func:`guestdbg_booke.guests.build` (content-hashed, so a second run reuses the ELF) and loaded
by the emulated e500mc host, found through the registry as a VMM would find it.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from vmm_debug_loop import ExampleFailed

from guestdbg.kvm.constants import KVM_EXIT_MMIO, exit_name
from guestdbg.plugins import default_registry
from guestdbg.vcpu import VmHandle
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT, HOSTIO_DONE
from guestdbg_booke.guests import build

HERE = pathlib.Path(__file__).resolve().parent
GUEST_SOURCE = HERE / "guests" / "e500mc_vmm.S"
ROUNDS = 3
EXIT_SKIPPED = 77


def build_dir() -> pathlib.Path:
    return pathlib.Path(tempfile.gettempdir()) / "guestdbg-examples"


def build_guest() -> pathlib.Path:
    return build(GUEST_SOURCE, build_dir())


def new_vm(elf: pathlib.Path) -> VmHandle:
    """The emulated e500mc KVM host (Unicorn under a model of Linux BookE-HV KVM): the same
    VmHandle interface as /dev/kvm, byte for byte, guest loaded and halted at its entry."""
    return default_registry().emulated_host("e500mc").create_vm(str(elf))


def read_u32(vm: VmHandle, addr: int) -> int:
    """A big-endian guest word at a guest address, read as the VMM reads guest RAM."""
    gpa = vm.vcpus[0].translate(addr)
    if gpa is None:
        raise ExampleFailed(f"{addr:#x} is not mapped in the guest")
    return int.from_bytes(vm.read_phys(gpa, 4), "big")


def missing_tool(*tools: str) -> str | None:
    for tool in ("powerpc-linux-gnu-as", "powerpc-linux-gnu-ld", *tools):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (tools/bootstrap.sh installs it)"
    return None


class HostIo:
    """The VMM's device model for the guest's host-I/O page (KVM_EXIT_MMIO stores): a
    checkpoint is logged and the guest runs on; "done" stops it. Same signature as a
    Session's ``exit_handler``."""

    def __init__(self, vm: VmHandle) -> None:
        field = vm.layout.field
        self._addr = field("struct kvm_run", "mmio", "phys_addr")
        self._data = field("struct kvm_run", "mmio", "data", 0)
        self._word = vm.layout.ffi.sizeof("uint32_t")
        self._data_offset = self._data.offset
        self._order = vm.layout.byteorder
        self.checkpoints: list[int] = []
        self.done: int | None = None

    def _value(self, run: memoryview) -> int:
        raw = bytes(run[self._data_offset : self._data_offset + self._word])
        return int.from_bytes(raw, self._order)

    def handle(self, index: int, reason: int, run: memoryview) -> bool:
        if reason == KVM_EXIT_MMIO and self._addr.get(run) == HOSTIO_CHECKPOINT:
            value = self._value(run)
            self.checkpoints.append(value)
            print(f"  {exit_name(reason):<15} checkpoint {value}  -> device model logs it, runs on")
            return True
        if reason == KVM_EXIT_MMIO and self._addr.get(run) == HOSTIO_DONE:
            self.done = self._value(run)
            print(f"  {exit_name(reason):<15} done (handled={self.done})  -> device model "
                  "stops the guest")  # fmt: skip
            return False
        print(f"  {exit_name(reason):<15} -> device model: not a device; guest stopped")
        return False
