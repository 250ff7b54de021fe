"""One toy vCPU: the KVM vCPU ioctls (``guestdbg.vcpu.VcpuHandle``) over the toy CPU.

Every structure crosses this interface as the big-endian bytes of the toy uapi
(:mod:`guestdbg_toyarch.abi`), exactly as a kernel would copy them. Like a KVM vCPU fd it serves
one thread at a time: an ioctl while another thread is inside KVM_RUN is refused (NotStopped);
``kick`` is the one call any thread may make.
"""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING

from guestdbg.errors import InvalidRequest, KernelError, NotStopped
from guestdbg.kvm import constants as C
from guestdbg.numbering import ExceptionId

from . import abi
from .cpu import ToyCpu
from .isa import BREAKPOINT_WORD
from .kvm_run import GuestDebug, RunLoop
from .numbering import PRIO, TABLE, VECTOR

if TYPE_CHECKING:
    from .vm import ToyVm

_REGS = "struct kvm_regs"
_GD = "struct kvm_guest_debug"
VALID_CONTROL = (
    C.KVM_GUESTDBG_ENABLE
    | C.KVM_GUESTDBG_SINGLESTEP
    | abi.KVM_GUESTDBG_USE_SW_BP
    | abi.KVM_GUESTDBG_USE_HW_BP
)
HW_BREAKPOINTS = 2
_BP_BITS = (abi.TOY_DBG_BP0, abi.TOY_DBG_BP1)


class ToyVcpu:
    def __init__(self, vm: ToyVm, vcpu_id: int) -> None:
        self._vm = vm
        self._vcpu_id = vcpu_id
        lay = vm.layout
        self.cpu = ToyCpu(vm.ram)
        self.loop = RunLoop(self.cpu, lay)
        self._busy = threading.Lock()
        self._regs_size = lay.sizeof(_REGS)
        self._sregs_size = lay.sizeof("struct kvm_sregs")
        self._gd_size = lay.sizeof(_GD)
        self._gpr = [lay.field(_REGS, "gpr", n) for n in range(8)]
        self._special = [lay.field(_REGS, n) for n in ("pc", "sr", "epc", "esr", "cause", "vbar")]
        self._pvr = lay.field("struct kvm_sregs", "pvr")
        self._control = lay.field(_GD, "control")
        self._bp_addr = [lay.field(_GD, "arch", "bp_addr", n) for n in range(HW_BREAKPOINTS)]
        self._bp_enable = lay.field(_GD, "arch", "bp_enable")
        self._wp_addr = lay.field(_GD, "arch", "wp_addr")
        self._wp_type = lay.field(_GD, "arch", "wp_type")

    @property
    def vcpu_id(self) -> int:
        return self._vcpu_id

    @property
    def kvm_run(self) -> memoryview:
        return self.loop.view

    def _stopped(self, ioctl: str) -> None:
        if self._busy.locked():
            raise NotStopped(f"{ioctl}: vCPU {self._vcpu_id} is in KVM_RUN on another thread")

    def _sized(self, ioctl: str, data: bytes, size: int) -> None:
        self._stopped(ioctl)
        if len(data) != size:
            raise InvalidRequest(f"{ioctl} takes {size} bytes, got {len(data)}")

    # -- running ----------------------------------------------------------------------------

    def run(self) -> int:
        if not self._busy.acquire(blocking=False):
            raise NotStopped(f"vCPU {self._vcpu_id} is already in KVM_RUN on another thread")
        try:
            return self.loop.run()
        finally:
            self._busy.release()

    def kick(self) -> None:
        self.loop.kicked = True

    def set_guest_debug(self, dbg: bytes) -> None:
        """Validates everything before changing anything (EINVAL, state untouched)."""
        self._sized("KVM_SET_GUEST_DEBUG", dbg, self._gd_size)
        control = self._control.get(dbg)
        enable = self._bp_enable.get(dbg)
        wp_type = self._wp_type.get(dbg)
        if control & ~VALID_CONTROL or enable >> HW_BREAKPOINTS or wp_type > 3:
            raise KernelError("KVM_SET_GUEST_DEBUG", errno.EINVAL)
        if not control & C.KVM_GUESTDBG_ENABLE:
            self.loop.debug = GuestDebug()
            return
        slots: tuple[tuple[int, int], ...] = ()
        wp_addr = -1
        if control & abi.KVM_GUESTDBG_USE_HW_BP:
            slots = tuple(
                (self._bp_addr[n].get(dbg), _BP_BITS[n])
                for n in range(HW_BREAKPOINTS)
                if enable & (1 << n)
            )
            wp_addr = self._wp_addr.get(dbg) if wp_type else -1
        self.loop.debug = GuestDebug(
            control, frozenset(a for a, _ in slots), slots, wp_addr, wp_type if wp_addr >= 0 else 0
        )

    # -- registers --------------------------------------------------------------------------

    def get_regs(self) -> bytearray:
        self._stopped("KVM_GET_REGS")
        cpu = self.cpu
        buf = bytearray(self._regs_size)
        for n, f in enumerate(self._gpr):
            f.put(buf, cpu.gpr[n])
        for f, v in zip(
            self._special, (cpu.pc, cpu.sr, cpu.epc, cpu.esr, cpu.cause, cpu.vbar), strict=True
        ):
            f.put(buf, v)
        return buf

    def set_regs(self, regs: bytes) -> None:
        """``gpr[0]`` is ignored: r0 is hard-wired to zero."""
        self._sized("KVM_SET_REGS", regs, self._regs_size)
        cpu = self.cpu
        cpu.gpr[1:] = [f.get(regs) for f in self._gpr[1:]]
        cpu.pc, cpu.sr, cpu.epc, cpu.esr, cpu.cause, cpu.vbar = (f.get(regs) for f in self._special)

    def get_sregs(self) -> bytearray:
        self._stopped("KVM_GET_SREGS")
        buf = bytearray(self._sregs_size)
        self._pvr.put(buf, 0x70790001)
        return buf

    def set_sregs(self, sregs: bytes) -> None:
        self._sized("KVM_SET_SREGS", sregs, self._sregs_size)
        if self._pvr.get(sregs) != 0x70790001:
            raise KernelError("KVM_SET_SREGS", errno.EINVAL, "the PVR is read-only")

    def get_one_reg(self, reg_id: int) -> int:
        self._stopped("KVM_GET_ONE_REG")
        if reg_id == abi.KVM_REG_TOY_DEBUG_INST:
            return BREAKPOINT_WORD
        raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, f"no register {reg_id:#x}")

    def set_one_reg(self, reg_id: int, value: int) -> None:
        self._stopped("KVM_SET_ONE_REG")
        if reg_id != abi.KVM_REG_TOY_QUEUE_PRIO:
            raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, f"no register {reg_id:#x}")
        if not TABLE.known(ExceptionId(PRIO, value)):
            raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, f"no priority {value}")
        self.loop.queued = TABLE.convert(ExceptionId(PRIO, value), VECTOR).number

    def translate(self, gva: int) -> int | None:
        """No MMU: guest-virtual is guest-physical, inside RAM."""
        return gva if 0 <= gva < len(self._vm.ram) else None
