"""One emulated x86-64 vCPU: the KVM vCPU ioctls over a Unicorn CPU and the kernel model.

Implements :class:`guestdbg.vcpu.VcpuHandle`, :class:`~guestdbg.vcpu.VcpuEventsHandle` and the
x86 KVM_GET/SET_DEBUGREGS (:class:`guestdbg_x86.guest_dregs.DebugRegsHandle`). Like a KVM vCPU
fd it serves one thread at a time: an ioctl while another thread is inside KVM_RUN is refused
with NotStopped (the kernel would make it wait for the vCPU mutex; Unicorn cannot be touched
from two threads at once). ``kick`` is the exception, as on ``/dev/kvm``.
"""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING

from guestdbg.errors import InvalidRequest, KernelError, NotStopped

from .. import abi
from .cpu_state import CpuState
from .events import EventState, QueuedException
from .exits import ExitWriter
from .guest_debug import GuestDebugModel
from .kvm_run import RunLoop
from .paging import translate
from .uc import UC_PROT_ALL, new_x86_64

if TYPE_CHECKING:
    from .vm import EmuX86Vm

_DR = "struct kvm_debugregs"
U32 = 0xFFFFFFFF


class EmuX86Vcpu:
    def __init__(self, vm: EmuX86Vm, vcpu_id: int) -> None:
        self._vm = vm
        self._vcpu_id = vcpu_id
        ram = vm.ram
        uc = new_x86_64()
        uc.mem_map_ptr(0, ram.size, UC_PROT_ALL, ram.address)
        self.uc = uc
        self.state = CpuState(uc)
        self.events = EventState(lambda: vm.payload_enabled, self._fold_payload)
        self.debug = GuestDebugModel(self.events)
        self.exits = ExitWriter()
        self.loop = RunLoop(uc, ram, self.state, self.events, self.debug, self.exits)
        lay = abi.layout()
        self._sizes = {
            "KVM_SET_REGS": lay.sizeof("struct kvm_regs"),
            "KVM_SET_SREGS": lay.sizeof("struct kvm_sregs"),
            "KVM_SET_VCPU_EVENTS": lay.sizeof("struct kvm_vcpu_events"),
            "KVM_SET_DEBUGREGS": lay.sizeof(_DR),
            "KVM_SET_GUEST_DEBUG": lay.sizeof("struct kvm_guest_debug"),
        }
        self._dr = [lay.field(_DR, "db", n) for n in range(4)]
        self._dr += [lay.field(_DR, "dr6"), lay.field(_DR, "dr7")]
        self._dr_flags = lay.field(_DR, "flags")
        self._cr0 = lay.field("struct kvm_sregs", "cr0")
        self._cr3 = lay.field("struct kvm_sregs", "cr3")
        self._busy = threading.Lock()

    @property
    def vcpu_id(self) -> int:
        return self._vcpu_id

    @property
    def kvm_run(self) -> memoryview:
        return self.exits.view

    def _stopped(self, ioctl: str) -> None:
        if self._busy.locked():
            raise NotStopped(f"{ioctl}: vCPU {self._vcpu_id} is in KVM_RUN on another thread")

    def _sized(self, ioctl: str, data: bytes) -> None:
        self._stopped(ioctl)
        if len(data) != self._sizes[ioctl]:
            raise InvalidRequest(f"{ioctl} takes {self._sizes[ioctl]} bytes, got {len(data)}")

    # -- running ----------------------------------------------------------------------------

    def run(self) -> int:
        if not self._busy.acquire(blocking=False):
            raise NotStopped(f"vCPU {self._vcpu_id} is already in KVM_RUN on another thread")
        try:
            return self.loop.run()
        finally:
            self._busy.release()

    def kick(self) -> None:
        self.loop.kick()

    def set_guest_debug(self, dbg: bytes) -> None:
        self._sized("KVM_SET_GUEST_DEBUG", dbg)
        self.debug.set(dbg)

    # -- registers --------------------------------------------------------------------------

    def get_regs(self) -> bytearray:
        self._stopped("KVM_GET_REGS")
        return self.state.get_regs()

    def set_regs(self, regs: bytes) -> None:
        self._sized("KVM_SET_REGS", regs)
        self.state.set_regs(regs)

    def get_sregs(self) -> bytearray:
        self._stopped("KVM_GET_SREGS")
        return self.state.get_sregs()

    def set_sregs(self, sregs: bytes) -> None:
        self._sized("KVM_SET_SREGS", sregs)
        self.state.set_sregs(sregs)

    def get_one_reg(self, reg_id: int) -> int:
        raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, "x86 KVM has no ONE_REG registers")

    def set_one_reg(self, reg_id: int, value: int) -> None:
        raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, "x86 KVM has no ONE_REG registers")

    def translate(self, gva: int) -> int | None:
        if not 0 <= gva < 1 << 64:
            raise InvalidRequest(f"{gva:#x} is not a 64-bit address")
        sregs = self.get_sregs()
        return translate(self._vm.ram, self._cr0.get(sregs), self._cr3.get(sregs), gva)

    # -- events and debug registers ---------------------------------------------------------

    def get_vcpu_events(self) -> bytearray:
        self._stopped("KVM_GET_VCPU_EVENTS")
        return self.events.get()

    def set_vcpu_events(self, events: bytes) -> None:
        self._sized("KVM_SET_VCPU_EVENTS", events)
        self.events.set(events)

    def _fold_payload(self, ex: QueuedException) -> None:
        self.loop.fold_payload(ex)

    def get_debugregs(self) -> bytearray:
        self._stopped("KVM_GET_DEBUGREGS")
        buf = bytearray(self._sizes["KVM_SET_DEBUGREGS"])
        for field, value in zip(self._dr, self.loop.guest_dregs(), strict=True):
            field.put(buf, value)
        return buf

    def set_debugregs(self, regs: bytes) -> None:
        """x86.c ``kvm_vcpu_ioctl_x86_set_debugregs``: flags must be 0, DR6 and DR7 must fit
        32 bits (``kvm_dr6_valid``/``kvm_dr7_valid``)."""
        self._sized("KVM_SET_DEBUGREGS", regs)
        values = [f.get(regs) for f in self._dr]
        if self._dr_flags.get(regs) or values[4] > U32 or values[5] > U32:
            raise KernelError("KVM_SET_DEBUGREGS", errno.EINVAL)
        self.loop.set_guest_dregs(values)
