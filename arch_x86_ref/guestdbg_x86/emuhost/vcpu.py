"""One emulated x86-64 vCPU: the KVM vCPU ioctls over a Unicorn CPU and the kernel model.

Implements :class:`guestdbg.vcpu.VcpuHandle`, :class:`~guestdbg.vcpu.VcpuEventsHandle` and the
x86 KVM_GET/SET_DEBUGREGS (:class:`~guestdbg.vcpu.DebugRegsHandle`). The vCPU fd's
semantics are :class:`guestdbg.emuhost.vcpu.EmulatedVcpu`'s: an ioctl from another thread while
KVM_RUN runs waits for it (``vcpu->mutex``), and a kick ends KVM_RUN between two instructions.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from guestdbg.emuhost.unicorn import SlotMapper
from guestdbg.emuhost.vcpu import EmulatedVcpu
from guestdbg.errors import KernelError

from .. import abi
from .cpu_state import CpuState
from .events import EventState, QueuedException
from .exits import ExitWriter
from .guest_debug import GuestDebugModel
from .kvm_run import RunLoop
from .paging import translate
from .uc import UC_PROT_EXEC, UC_PROT_READ, new_x86_64

if TYPE_CHECKING:
    from .vm import EmuX86Vm

_DR = "struct kvm_debugregs"
U32 = 0xFFFFFFFF


class EmuX86Vcpu(EmulatedVcpu):
    def __init__(self, vm: EmuX86Vm, vcpu_id: int) -> None:
        exits = ExitWriter()
        super().__init__(vcpu_id, abi.layout(), exits)
        self._vm = vm
        uc = new_x86_64()
        self.mapper = SlotMapper(uc, vm.memory, read_only_prot=UC_PROT_READ | UC_PROT_EXEC)
        self.uc = uc
        self.state = CpuState(uc)
        self.events = EventState(lambda: vm.payload_enabled, self._fold_payload)
        self.debug = GuestDebugModel(self.events)
        self.exits = exits
        self.loop = RunLoop(
            uc, vm.memory, self.mapper, self.state, self.events, self.debug, exits,
            self._signal_pending,
        )  # fmt: skip
        lay = abi.layout()
        self._dr = [lay.field(_DR, "db", n) for n in range(4)]
        self._dr += [lay.field(_DR, "dr6"), lay.field(_DR, "dr7")]
        self._dr_flags = lay.field(_DR, "flags")
        self._cr0 = lay.field("struct kvm_sregs", "cr0")
        self._cr3 = lay.field("struct kvm_sregs", "cr3")

    # -- the model behind the common ioctls -------------------------------------------------

    def _enter(self) -> int:
        return self.loop.run()

    def _drop_translations(self, lo: int, hi: int) -> None:
        self.loop.code_changed(lo, hi)

    def _set_guest_debug(self, dbg: bytes) -> None:
        self.debug.set(dbg)

    def _get_regs(self) -> bytearray:
        return self.state.get_regs()

    def _set_regs(self, regs: bytes) -> None:
        self.state.set_regs(regs)

    def _get_sregs(self) -> bytearray:
        return self.state.get_sregs()

    def _set_sregs(self, sregs: bytes) -> None:
        self.state.set_sregs(sregs)

    def _get_one_reg(self, reg_id: int) -> int:
        raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, "x86 KVM has no ONE_REG registers")

    def _set_one_reg(self, reg_id: int, value: int) -> None:
        raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, "x86 KVM has no ONE_REG registers")

    def _translate(self, gva: int) -> int | None:
        sregs = self.state.get_sregs()
        return translate(self._vm.memory, self._cr0.get(sregs), self._cr3.get(sregs), gva)

    # -- events and debug registers ---------------------------------------------------------

    def get_vcpu_events(self) -> bytearray:
        with self.mutex:
            return self.events.get()

    def set_vcpu_events(self, events: bytes) -> None:
        events = self._checked("KVM_SET_VCPU_EVENTS", events)
        with self.mutex:
            self.events.set(events)

    def _fold_payload(self, ex: QueuedException) -> None:
        self.loop.fold_payload(ex)

    def get_debugregs(self) -> bytearray:
        with self.mutex:
            buf = bytearray(self._sizes["KVM_GET_DEBUGREGS"])
            for field, value in zip(self._dr, self.loop.guest_dregs(), strict=True):
                field.put(buf, value)
            return buf

    def set_debugregs(self, regs: bytes) -> None:
        """x86.c ``kvm_vcpu_ioctl_x86_set_debugregs``: flags must be 0, DR6 and DR7 must fit
        32 bits (``kvm_dr6_valid``/``kvm_dr7_valid``)."""
        regs = self._checked("KVM_SET_DEBUGREGS", regs)
        values = [f.get(regs) for f in self._dr]
        if self._dr_flags.get(regs) or values[4] > U32 or values[5] > U32:
            raise KernelError("KVM_SET_DEBUGREGS", errno.EINVAL)
        with self.mutex:
            self.loop.set_guest_dregs(values)
