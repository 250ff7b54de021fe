"""One emulated e500 vCPU behind the ``VcpuHandle`` interface: the vCPU fd of an e500 KVM host.

The vCPU fd's semantics (``vcpu->mutex`` around every ioctl, KVM_RUN's ``immediate_exit`` and
kicks as signals, structure sizes) are :class:`guestdbg.emuhost.vcpu.EmulatedVcpu`'s; this class
adds the e500 model: each ioctl goes to the kernel model with the kernel's byte layout and
errors (``KernelError`` naming the ioctl and errno), and KVM_RUN is ``kvm_exit.VcpuRunner``,
which polls for a kick between two engine runs.
"""

from __future__ import annotations

import dataclasses
import errno
import struct
from typing import TYPE_CHECKING, Any

from guestdbg.emuhost.vcpu import EmulatedVcpu
from guestdbg.errors import KernelError, MigrationError

from .. import abi
from . import kvm_msr
from .board import ALTIVEC
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
from .kvm_uapi import UapiCodec, altivec_one_reg
from .run_area import KvmRunArea

if TYPE_CHECKING:
    from .vm import EmulatedBookeVm

_SPRG_USER = {3: 0x113, 4: 0x114, 5: 0x115, 6: 0x116, 7: 0x117}
"""SPRG index -> the SPR number a supervisor writes (its problem-state read alias lives in the
engine)."""
SPRN_USPRG0 = 0x100
_DECODED_GUEST_DEBUG = 8
"""``struct kvm_guest_debug`` decodings a vCPU keeps (``_set_guest_debug``)."""


class EmulatedBookeVcpu(EmulatedVcpu):
    MAX_ONE_REG_SIZE = 16  # powerpc.c: union kvmppc_one_reg holds a 128-bit vector register

    def __init__(self, vm: EmulatedBookeVm, vcpu_id: int) -> None:
        super().__init__(vcpu_id, abi.layout(), KvmRunArea())
        self._vm = vm
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
        self.run_area: KvmRunArea
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
        self._dbg_control = lay.field(gd, "control")
        # Only bp[0..3] are ever read by the kernel (KVMPPC_BOOKE_IAC_NUM + DAC_NUM on e500):
        # the other twelve entries are not even decoded.
        self._dbg_bp = [
            (lay.field(gd, "arch", "bp", n, "addr"), lay.field(gd, "arch", "bp", n, "type"))
            for n in range(KVMPPC_BOOKE_IAC_NUM + KVMPPC_BOOKE_DAC_NUM)
        ]
        # ... each a __u64 addr, __u32 type and __u32 reserved: all four in one unpack
        at = self._dbg_bp[0][0].offset
        packed = all(
            addr.offset == at + 16 * n and typ.offset == at + 16 * n + 8 and typ.size == 4
            for n, (addr, typ) in enumerate(self._dbg_bp)
        )
        self._dbg_bp_all = (at, struct.Struct(">" + "QI4x" * len(self._dbg_bp))) if packed else None
        self._dbg_decoded: dict[bytes, tuple[int, tuple[tuple[int, int], ...]]] = {}
        """What was read from the last few ``struct kvm_guest_debug``: a debugger sends the
        same few over and over (a breakpoint's pass: with single-step, then without)."""
        # kvmppc_core_vcpu_create: PC = 0, MSR = 0 (via kvmppc_set_msr), r1 = 16 MiB - 8
        kvm_msr.set_msr(self.arch, 0)
        self.engine.set_gpr(1, (16 << 20) - 8)
        self._regs: bytes | None = None
        """What KVM_GET_REGS returned, until something can change it (:meth:`changed`). The
        kernel's GET_REGS copies fields out of the vcpu struct; the model's reads the engine
        (XER through a stub run), several microseconds, and a hit the session judges and then
        passes in place reads the registers twice. Only this vCPU's ioctls change them."""

    # -- KVM_RUN --------------------------------------------------------------------------------

    def changed(self) -> None:
        """The registers may differ from the last KVM_GET_REGS: every ioctl that writes state,
        KVM_RUN, and the VM's boot and migration paths call this."""
        self._regs = None

    def _before_entry(self) -> None:
        """powerpc.c ``kvm_arch_vcpu_ioctl_run`` completes a pending MMIO load before it looks
        at ``immediate_exit``."""
        self.changed()
        self.runner.complete_mmio()

    def _enter(self) -> int:
        """A halted vCPU (MSR[WE]) sleeps until a signal: ``kvm_vcpu_block`` with no interrupt
        source to wake it."""
        return self.runner.run(self._signal_pending, self._wait_for_signal)

    def _after_exit(self) -> None:
        self.changed()
        self.runner.vcpu_put()

    def _drop_translations(self, lo: int, hi: int) -> None:
        self.engine.invalidate(lo & ~3, (hi + 3) & ~3)

    # -- vCPU ioctls ----------------------------------------------------------------------------

    def _set_guest_debug(self, dbg: bytes) -> None:
        decoded = self._dbg_decoded.get(dbg)
        if decoded is None:
            if len(self._dbg_decoded) >= _DECODED_GUEST_DEBUG:
                self._dbg_decoded.clear()
            decoded = self._dbg_decoded[dbg] = self._decode_guest_debug(dbg)
        control, bps = decoded
        self.changed()
        r = set_guest_debug(self.kvm, control, bps)
        self.runner.vcpu_put()
        if r < 0:
            raise KernelError("KVM_SET_GUEST_DEBUG", -r)

    def _decode_guest_debug(self, dbg: bytes) -> tuple[int, tuple[tuple[int, int], ...]]:
        """``control`` and ``arch.bp[0..3]`` (address, type), what the kernel reads."""
        control = self._dbg_control.get(dbg)
        if self._dbg_bp_all is not None:
            at, bp_all = self._dbg_bp_all
            flat = bp_all.unpack_from(dbg, at)
            return control, tuple(zip(flat[0::2], flat[1::2], strict=True))
        return control, tuple((addr.get(dbg), typ.get(dbg)) for addr, typ in self._dbg_bp)

    def _get_regs(self) -> bytearray:
        if self._regs is None:
            self._regs = bytes(self.codec.get_regs(self.kvm, self.engine))
        return bytearray(self._regs)

    def _set_regs(self, regs: bytes) -> None:
        self.changed()
        self.codec.set_regs(self.kvm, self.cpu, self.engine, regs)

    def _get_sregs(self) -> bytearray:
        return self.codec.get_sregs(self.kvm)

    def _set_sregs(self, sregs: bytes) -> None:
        self.changed()
        r = self.codec.set_sregs(self.kvm, sregs)
        if r < 0:
            raise KernelError("KVM_SET_SREGS", -r)

    def _get_one_reg(self, reg_id: int) -> int:
        value = self.codec.get_one_reg(self.kvm, reg_id)
        if value is None:
            value = altivec_one_reg(self.kvm, self.engine, reg_id)
        if value < 0:
            raise KernelError("KVM_GET_ONE_REG", -value, f"id {reg_id:#x}")
        return value

    def _set_one_reg(self, reg_id: int, value: int) -> None:
        self.changed()
        r = self.codec.set_one_reg(self.kvm, reg_id, value)
        if r == -errno.EINVAL:
            r = altivec_one_reg(self.kvm, self.engine, reg_id, value)
        if r < 0:
            raise KernelError("KVM_SET_ONE_REG", -r, f"id {reg_id:#x}")

    def _translate(self, gva: int) -> int | None:
        """KVM_TRANSLATE: ``linear_address`` encodes AS (bit 40), PID (bits 32-39) and the EA,
        searched in the guest TLB (``kvmppc_core_vcpu_translate``). The EA is a ``gva_t``, an
        ``unsigned long``: the low 32 bits on a 32-bit host, the whole value on a 64-bit one
        (whose bits 32-40 are then both part of the EA and the PID/AS)."""
        a = self.arch
        return a.tlb.translate(gva & a.ulong, (gva >> 32) & 0xFF, (gva >> 40) & 1)

    # -- migration ------------------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        """Everything of this vCPU a VMM would migrate (engine registers + the kernel's state)."""
        with self.mutex:
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
                **self._save_vector(),
            }

    def _save_vector(self) -> dict[str, Any]:
        """e6500: the AltiVec registers, which live in the engine like the GPRs."""
        if self.arch.core not in ALTIVEC:
            return {}
        e = self.engine
        return {"vr": [e.vr(n) for n in range(32)], "vscr": e.vscr()}

    def load(self, d: dict[str, Any]) -> None:
        with self.mutex:
            self.changed()
            new = VcpuArch.from_dict(d["arch"])
            if new.vcpu_id != self._vcpu_id or new.core != self.arch.core:
                raise MigrationError(
                    f"state of {new.core} vCPU {new.vcpu_id} does not fit "
                    f"{self.arch.core} vCPU {self._vcpu_id}"
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
            if self.arch.core in ALTIVEC:
                for n, value in enumerate(d["vr"]):
                    e.set_vr(n, value)
                e.set_vscr(d["vscr"])
            for slot in self._vm.memory.slots:
                e.invalidate(slot.gpa, slot.end)
