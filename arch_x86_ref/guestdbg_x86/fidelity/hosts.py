"""The two x86-64 machines a fidelity program runs on: this machine's ``/dev/kvm`` (the
reference) and the emulated host (under test), each one VM with one vCPU behind the same
:class:`guestdbg.vcpu.VmHandle` interface.

One machine serves many programs, as a VMM reuses its vCPU: :meth:`Machine.load` boots the next
ELF with :func:`guestdbg_x86.boot.boot` and also zeroes every general register, so a program
starts from the same state on both however the last one ended (a fresh KVM vCPU's GPRs are 0;
the loader sets only RIP, RSP and RFLAGS). Creating an emulated VM (a Unicorn instance, its
RAM, its page tables) costs more than loading an ELF into one, which is why it is not done per
program.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from guestdbg.kvm import constants as C
from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason
from guestdbg.vcpu import VcpuHandle, VmHandle

from .. import abi, boot
from ..emuhost.vm import EmuX86Vm

RAM_SIZE = 4 << 20
WATCHDOG_S = 10.0
"""A program that has not finished on a host by then is kicked out of KVM_RUN (KVM_EXIT_INTR)."""
_GD = "struct kvm_guest_debug"
_REGS = "struct kvm_regs"


def kvm_unusable() -> str | None:
    """Why this machine's /dev/kvm cannot be the reference, or None."""
    if machine_kvm_arch() != "x86_64":
        return f"the reference needs an x86-64 /dev/kvm; this machine is {machine_kvm_arch()}"
    return unusable_reason(abi.layout())


@dataclass
class Machine:
    name: str
    vm: VmHandle
    closer: Callable[[], None] = lambda: None
    _timer: threading.Timer | None = field(default=None, repr=False)

    @property
    def vcpu(self) -> VcpuHandle:
        return self.vm.vcpus[0]

    def load(self, image: boot.GuestImage, control: int) -> None:
        """Boot ``image`` from zeroed registers and set KVM_SET_GUEST_DEBUG ``control``."""
        lay = abi.layout()
        self.vcpu.set_regs(bytes(lay.new(_REGS)))
        boot.boot(self.vm, image, RAM_SIZE)
        dbg = lay.new(_GD)
        lay.field(_GD, "control").put(dbg, control)
        self.vcpu.set_guest_debug(bytes(dbg))

    def arm_watchdog(self) -> None:
        self.disarm_watchdog()
        self._timer = threading.Timer(WATCHDOG_S, self.vcpu.kick)
        self._timer.daemon = True
        self._timer.start()

    def disarm_watchdog(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.disarm_watchdog()
        self.closer()


def real_kvm() -> Machine:
    """A VM on /dev/kvm with RAM_SIZE of memory at 0 and one vCPU (check kvm_unusable first)."""
    kvm = Kvm(abi.layout())
    try:
        vm = kvm.create_vm()
        vm.add_memory(0, RAM_SIZE)
        vm.create_vcpu()
    except BaseException:
        kvm.close()
        raise
    return Machine("kvm", vm, kvm.close)


def emulated() -> Machine:
    return Machine("emulated", EmuX86Vm(RAM_SIZE))


SINGLESTEP = C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP
