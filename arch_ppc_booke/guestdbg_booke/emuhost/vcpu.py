"""One emulated e500 vCPU behind the ``VcpuHandle`` interface: the vCPU fd of an e500 KVM host.

Each method is a vCPU ioctl with the kernel's byte layout and errors (``KernelError`` naming
the ioctl and errno). As KVM's ``vcpu->mutex`` does, a lock serialises them: an ioctl from another
thread waits while KVM_RUN is in progress. ``kick`` is the exception: it plays the signal a VMM
sends a vCPU thread, and makes the current or next ``run`` return KVM_EXIT_INTR.

Kicking has one race to close: Unicorn's ``emu_stop`` is thread-safe but is forgotten if it lands
just before ``emu_start`` resets its own stop flag. ``kick`` therefore repeats it until the vCPU
thread has seen the kick (or left KVM_RUN).
"""

from __future__ import annotations

import dataclasses
import errno
import threading
from typing import TYPE_CHECKING, Any

from guestdbg.errors import KernelError, MigrationError
from guestdbg.kvm.constants import KVM_EXIT_INTR, one_reg_size

from . import kvm_msr
from .engine import (
    REG_CR,
    REG_CTR,
    REG_FPSCR,
    REG_LR,
    CpuView,
    Engine,
)
from .facility import DebugFacility
from .kvm_debug import KVMPPC_BOOKE_DAC_NUM, KVMPPC_BOOKE_IAC_NUM, set_guest_debug
from .kvm_exit import VcpuRunner
from .kvm_state import Kvm, VcpuArch
from .kvm_uapi import UapiCodec
from .run_area import KvmRunArea

if TYPE_CHECKING:
    from .vm import EmulatedBookeVm

_SPRG_USER = {3: 0x113, 4: 0x114, 5: 0x115, 6: 0x116, 7: 0x117}
"""SPRG index -> the SPR number a supervisor writes (its problem-state read alias lives in the
engine)."""
SPRN_USPRG0 = 0x100


class EmulatedBookeVcpu:
    def __init__(self, vm: EmulatedBookeVm, vcpu_id: int) -> None:
        self._vm = vm
        self._id = vcpu_id
        self.arch = VcpuArch(
            core=vm.core,
            vcpu_id=vcpu_id,
            pvr=vm.pvr,
            svr=vm.svr,
            sw_break_flavour=vm.sw_break_flavour,
        )
        self.facility = DebugFacility(self.arch)
        self.engine = Engine(vm.core, vm.memory)
        self.facility.attach(self.engine)
        self.cpu = CpuView(self.engine)
        self.run_area = KvmRunArea()
        self.kvm = Kvm(
            arch=self.arch,
            cpu=self.cpu,
            run=self.run_area,
            reload_debug=self.facility.load,
            push_user_spr=self.engine.spr_write,
        )
        self.runner = VcpuRunner(
            self.kvm, self.cpu, self.engine, self.facility, vm.memory, self.run_area
        )
        self.codec = UapiCodec()
        lay = self.codec.layout
        gd = "struct kvm_guest_debug"
        self._dbg_size = lay.sizeof(gd)
        self._dbg_control = lay.field(gd, "control")
        # Only bp[0..3] are ever read by the kernel (KVMPPC_BOOKE_IAC_NUM + DAC_NUM on e500):
        # the other twelve entries are not even decoded.
        self._dbg_bp = [
            (lay.field(gd, "arch", "bp", n, "addr"), lay.field(gd, "arch", "bp", n, "type"))
            for n in range(KVMPPC_BOOKE_IAC_NUM + KVMPPC_BOOKE_DAC_NUM)
        ]
        self._lock = threading.RLock()
        self._in_run = False
        self._kicked = False
        self._wake = threading.Event()
        self._inval_lock = threading.Lock()
        self._inval: list[tuple[int, int]] = []
        # kvmppc_core_vcpu_create: PC = 0, MSR = 0 (via kvmppc_set_msr), r1 = 16 MiB - 8
        kvm_msr.set_msr(self.arch, 0)
        self.engine.set_gpr(1, (16 << 20) - 8)

    @property
    def vcpu_id(self) -> int:
        return self._id

    @property
    def kvm_run(self) -> memoryview:
        return self.run_area.view

    # -- KVM_RUN and kicks ----------------------------------------------------------------------

    def run(self) -> int:
        with self._lock:
            if self.run_area.immediate_exit:
                self.run_area.exit_reason = KVM_EXIT_INTR
                return KVM_EXIT_INTR
            self._in_run = True
            try:
                return self.runner.run(self._interrupted, self._block)
            finally:
                # a kick that arrives as KVM_RUN returns for another reason stays pending, as a
                # signal does: the next KVM_RUN returns KVM_EXIT_INTR at once
                self._in_run = False
                self.runner.vcpu_put()

    def kick(self) -> None:
        """Like a signal to the vCPU thread: the running KVM_RUN notices it between two
        instructions, at the latest when the current slice of the free run ends
        (``engine._SLICE``); a halted vCPU is woken."""
        self._kicked = True
        self._wake.set()

    def _interrupted(self) -> bool:
        if self._inval:
            self._apply_invalidations()
        if self._kicked:
            self._kicked = False
            return True
        return False

    def _block(self) -> None:
        """A halted vCPU (MSR[WE]) sleeps until a signal: ``kvm_vcpu_block`` with no interrupt
        source to wake it."""
        self._wake.wait()
        self._wake.clear()

    def invalidate(self, lo: int, hi: int) -> None:
        """Drop this vCPU's translations of [lo, hi): now if it is not running, else at its next
        loop, at the latest when the current slice of its free run ends (an asynchronous stop
        would not land on an instruction boundary, see ``engine._SLICE``)."""
        if self._lock.acquire(blocking=False):
            try:
                self.engine.invalidate(lo, hi)
            finally:
                self._lock.release()
            return
        with self._inval_lock:
            self._inval.append((lo, hi))

    def _apply_invalidations(self) -> None:
        with self._inval_lock:
            pending, self._inval = self._inval, []
        for lo, hi in pending:
            self.engine.invalidate(lo, hi)

    # -- vCPU ioctls ----------------------------------------------------------------------------

    def set_guest_debug(self, dbg: bytes) -> None:
        if len(dbg) != self._dbg_size:
            raise KernelError(
                "KVM_SET_GUEST_DEBUG", errno.EFAULT, f"struct is {self._dbg_size} bytes"
            )
        control = self._dbg_control.get(dbg)
        bps = [(addr.get(dbg), typ.get(dbg)) for addr, typ in self._dbg_bp]
        with self._lock:
            r = set_guest_debug(self.kvm, control, bps)
            self.runner.vcpu_put()
        if r < 0:
            raise KernelError("KVM_SET_GUEST_DEBUG", -r)

    def get_regs(self) -> bytearray:
        with self._lock:
            return self.codec.get_regs(self.kvm, self.engine)

    def set_regs(self, regs: bytes) -> None:
        self._check_size("KVM_SET_REGS", regs, self.codec.regs_size)
        with self._lock:
            self.codec.set_regs(self.kvm, self.cpu, self.engine, regs)

    def get_sregs(self) -> bytearray:
        with self._lock:
            return self.codec.get_sregs(self.kvm)

    def set_sregs(self, sregs: bytes) -> None:
        self._check_size("KVM_SET_SREGS", sregs, self.codec.sregs_size)
        with self._lock:
            r = self.codec.set_sregs(self.kvm, sregs)
        if r < 0:
            raise KernelError("KVM_SET_SREGS", -r)

    def get_one_reg(self, reg_id: int) -> int:
        if one_reg_size(reg_id) > 8:
            raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, f"id {reg_id:#x}")
        with self._lock:
            value = self.codec.get_one_reg(self.kvm, reg_id)
        if value is None:
            raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, f"id {reg_id:#x}")
        return value & ((1 << (8 * one_reg_size(reg_id))) - 1)

    def set_one_reg(self, reg_id: int, value: int) -> None:
        size = one_reg_size(reg_id)
        if size > 8 or not 0 <= value < 1 << (8 * size):
            raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, f"id {reg_id:#x} = {value:#x}")
        with self._lock:
            r = self.codec.set_one_reg(self.kvm, reg_id, value)
        if r < 0:
            raise KernelError("KVM_SET_ONE_REG", -r, f"id {reg_id:#x}")

    def translate(self, gva: int) -> int | None:
        """KVM_TRANSLATE: ``linear_address`` encodes AS (bit 40), PID (bits 32-39) and the EA,
        searched in the guest TLB (``kvmppc_core_vcpu_translate``)."""
        with self._lock:
            return self.arch.tlb.translate(gva & 0xFFFFFFFF, (gva >> 32) & 0xFF, (gva >> 40) & 1)

    @staticmethod
    def _check_size(ioctl: str, buf: bytes, size: int) -> None:
        if len(buf) != size:
            raise KernelError(ioctl, errno.EFAULT, f"struct is {size} bytes, got {len(buf)}")

    # -- migration ------------------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        """Everything of this vCPU a VMM would migrate (engine registers + the kernel's state)."""
        with self._lock:
            e = self.engine
            return {
                "pc": self.cpu.pc,
                "gpr": e.gprs(),
                "cr": e.read(REG_CR),
                "lr": e.read(REG_LR),
                "ctr": e.read(REG_CTR),
                "xer": e.xer(),
                "fpr": e.fprs(),
                "fpscr": e.read(REG_FPSCR),
                "usprg0": e.spr_read(SPRN_USPRG0),
                "arch": self.arch.to_dict(),
            }

    def load(self, d: dict[str, Any]) -> None:
        with self._lock:
            new = VcpuArch.from_dict(d["arch"])
            if new.vcpu_id != self._id or new.core != self.arch.core:
                raise MigrationError(
                    f"state of {new.core} vCPU {new.vcpu_id} does not fit "
                    f"{self.arch.core} vCPU {self._id}"
                )
            for f in dataclasses.fields(VcpuArch):
                setattr(self.arch, f.name, getattr(new, f.name))
            e = self.engine
            self.cpu.pc = d["pc"]
            e.set_gprs(d["gpr"])
            e.write(REG_CR, d["cr"])
            e.write(REG_LR, d["lr"])
            e.write(REG_CTR, d["ctr"])
            e.set_xer(d["xer"])
            e.set_fprs(d["fpr"])
            e.write(REG_FPSCR, d["fpscr"])
            e.spr_write(SPRN_USPRG0, d["usprg0"])
            for n, sprn in _SPRG_USER.items():
                e.spr_write(sprn, self.arch.sprg[n])
            e.invalidate(0, self._vm.memory.size)
