"""x86 debug operations bound to one vCPU: program, decode, judge, re-inject.

What the kernel does, and so what this module must do in userspace
(docs/reference/kvm-debug-abi.md §5.4, read against ``arch/x86/kvm/x86.c`` and
``vmx/vmx.c``):

* ``kvm_arch_vcpu_ioctl_set_guest_debug``: with USE_HW_BP the host's ``debugreg[0..3]`` and
  ``debugreg[7]`` become the effective DR0-3/DR7 (``eff_db``, ``guest_debug_dr7``); the guest's
  own values stay in ``vcpu->arch.db``/``dr7`` and come back when the host stops using them.
  DR0-3/DR7 are built as QEMU builds them (:mod:`guestdbg_x86.dr_slots`), BLOCKIRQ is added to
  a step when the kernel offers it (QEMU's NOIRQ stepping).
* ``handle_exception_nmi``: #DB reaches userspace only with SINGLESTEP or USE_HW_BP, #BP only
  with USE_SW_BP; ``pc`` is the linear RIP, ``dr6`` the exit qualification ORed with
  DR6_ACTIVE_LOW. A B0-B3 bit is decoded with the DR7 this vCPU was *given* (kvm_pvm reports
  ``dr7 = 0``): RW 00 is a hardware breakpoint at DRn, 01 a write watch, 11 an access watch, both
  reported with the DRn address; x86 data breakpoints are traps, so a watch's ``pc`` is the
  instruction after the access, as the hardware reports it. DR6.BS alone is a single step.
* An unclaimed #DB is the guest's (its own TF, a general-detect fault): re-inject vector 1 with
  the DR6 the exit reported. An unclaimed B0-B3 hit is a slot this vCPU was given for a point
  that is gone (removed while the exit was in flight): while USE_HW_BP is set the guest's own
  DR0-3 are not in effect, so it cannot be the guest's and is dropped (RESUME), never shown to
  the guest.
* An unclaimed #BP is the guest's own ``int3``. The exit leaves RIP *at* the int3 and VMX saves
  the instruction length (``vcpu->arch.event_exit_inst_len``, "as we may reinject #BP from user
  space"); ``vmx_inject_exception`` injects a soft exception with that length, so the guest's
  frame holds the RIP after the int3 (SVM decodes the instruction for the same effect,
  ``svm_update_soft_interrupt_rip``). So RIP must *not* be advanced before injecting. Where the
  kernel cannot hold the length (the VM was migrated, or RIP moved since), nothing is injected
  and RIP stays at the int3, which raises the same #BP again - the kernel's own rule for soft
  exceptions (``kvm_vcpu_ioctl_x86_get_vcpu_events``: "as long as the guest RIP isn't advanced,
  we should expect to encounter the exception again").

Ownership: only host-priority (QEMU's behaviour). The guest's own DR0-3/DR6/DR7 are read at
attach; detach puts a register back only if it now holds what the host programmed (a kernel
that leaked the host's value into guest state) - a value the guest wrote itself meanwhile wins.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from guestdbg.arch import OwnershipPolicy, VcpuDebugRequest
from guestdbg.errors import UnsupportedByArch
from guestdbg.events import DebugEvent, EventKind, Reinject, Resume
from guestdbg.host_report import is_real_kvm
from guestdbg.kvm.constants import (
    KVM_CAP_EXCEPTION_PAYLOAD,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from guestdbg.numbering import ExceptionId
from guestdbg.points import DebugPoint
from guestdbg.vcpu import VcpuEventsHandle, VcpuHandle

from . import abi, dr_slots, host_probe, kernel_caps, numbering
from .debugregs import DR6_BS, DR_RW_EXECUTE, DR_TRAP_BITS, slot_rw
from .guest_dregs import GuestDebugRegs
from .in_place import Fetch, InPlace
from .inject import ExceptionInjector

DB_VECTOR = numbering.DB.number
BP_VECTOR = numbering.BP.number
INT3 = b"\xcc"
_EXIT = struct.Struct("<I4xQQ")
"""``kvm_debug_exit_arch``'s exception, pc and dr6 in one read (the layout is checked at init)."""
SAVED = ("dr0", "dr1", "dr2", "dr3", "dr7")
"""What attach/detach keep; DR6 is status the guest owns outright."""
RFLAGS_RF = 1 << 16
_HostState = tuple[tuple[DebugPoint, ...], bool, bool]
"""What ``encode_guest_debug`` is given: hardware points, step, software breakpoints."""
_ENCODED_KEPT = 16


class X86VcpuDebug:
    """``ArchVcpuDebug`` for x86-64 guests under KVM (VMX, SVM, or an emulating host)."""

    def __init__(self, request: VcpuDebugRequest) -> None:
        if request.policy != OwnershipPolicy.HOST_PRIORITY:
            raise UnsupportedByArch(
                f"the x86 plugin implements {OwnershipPolicy.HOST_PRIORITY} only (QEMU's "
                f"behaviour); {request.policy!r} is not available"
            )
        self.vcpu: VcpuHandle = request.vcpu
        if not isinstance(self.vcpu, VcpuEventsHandle):
            raise UnsupportedByArch(
                "this vCPU offers no KVM_GET/SET_VCPU_EVENTS (guestdbg.vcpu.VcpuEventsHandle): "
                "the guest's own #BP and #DB could not be handed back to it"
            )
        self.vm = request.vm
        self.kernel = kernel_caps.probe(self.vm)
        self.caps = kernel_caps.debug_caps(request.core.caps, self.kernel)
        self.rf_honoured = True
        """RFLAGS.RF suppresses the host's execute breakpoint for one instruction here, as
        on VMX and as the emulated host models it; the probe says so for a real /dev/kvm."""
        if request.options.get("probe_host", True) and is_real_kvm(self.vm):
            # the kernel accepts more than it delivers on some hosts: try it (once a process)
            result = host_probe.probed()
            self.caps = host_probe.delivered_caps(self.caps, result)
            self.rf_honoured = host_probe.resume_flag_honoured(result)
        elif is_real_kvm(self.vm):
            self.rf_honoured = False  # not probed: kvm_pvm ignores it
        self.sw_break_insn = INT3
        self.payload_enabled = False
        if self.kernel.exception_payload and request.options.get("exception_payload", True):
            self.vm.enable_cap(KVM_CAP_EXCEPTION_PAYLOAD, 1)  # QEMU kvm_arch_init does the same
            self.payload_enabled = True
        self.dregs = GuestDebugRegs(self.vcpu)
        self.injector = ExceptionInjector(self.vcpu, self.dregs, self.payload_enabled)
        lay = abi.layout()
        gd = "struct kvm_guest_debug"
        self._size = lay.sizeof(gd)
        self._control = lay.field(gd, "control")
        self._debugreg = [lay.field(gd, "arch", "debugreg", n) for n in range(8)]
        exit_arch = ("struct kvm_run", "debug", "arch")
        self._exit_exception = lay.field(*exit_arch, "exception")
        self._exit_pc = lay.field(*exit_arch, "pc")
        self._exit_dr6 = lay.field(*exit_arch, "dr6")
        self._exit_at = self._exit_exception.offset
        if (self._exit_pc.offset, self._exit_dr6.offset) != (self._exit_at + 8, self._exit_at + 16):
            raise UnsupportedByArch("kvm_debug_exit_arch is not exception, pad, pc, dr6")
        self._exit_unpack = _EXIT.unpack_from
        self._rip = lay.field("struct kvm_regs", "rip")
        self._rflags = lay.field("struct kvm_regs", "rflags")
        self.image = dr_slots.EMPTY
        """DR0-3/DR7 this vCPU was last given (decode_exit reads slot kinds from it)."""
        self._last_hw_image = dr_slots.EMPTY
        self._encoded: dict[_HostState, tuple[bytes, dr_slots.SlotImage]] = {}
        """``struct kvm_guest_debug`` and DR image per host state already encoded."""
        self._bp_exit_pc: int | None = None
        """PC of the #BP exit whose instruction length the kernel still holds."""
        self.in_place = InPlace(self.vm, self.vcpu, self.dregs, self._host_uses_drs)

    # -- programming ------------------------------------------------------------------------

    def encode_guest_debug(
        self, hw_points: Sequence[DebugPoint], step: bool, sw_breaks: bool
    ) -> bytes:
        """Each host state is encoded once and kept: a breakpoint hit passed by a single step
        (its condition false) switches between two states and back at every hit."""
        key = (tuple(hw_points), step, sw_breaks)
        known = self._encoded.get(key)
        if known is None:
            if len(self._encoded) >= _ENCODED_KEPT:
                self._encoded.clear()
            known = self._encoded[key] = self._encode(hw_points, step, sw_breaks)
        dbg, image = known
        if hw_points:
            self._last_hw_image = image
        self.image = image
        return dbg

    def _encode(
        self, hw_points: Sequence[DebugPoint], step: bool, sw_breaks: bool
    ) -> tuple[bytes, dr_slots.SlotImage]:
        image = dr_slots.encode(hw_points)
        control = 0
        if sw_breaks:
            control |= KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP
        if step:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
            if self.caps.step_blocks_irqs:
                control |= abi.KVM_GUESTDBG_BLOCKIRQ
        if hw_points:
            control |= KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
        missing = control & ~self.kernel.control_mask
        if missing:
            raise UnsupportedByArch(f"this kernel does not accept guest-debug bits {missing:#x}")
        buf = bytearray(self._size)
        self._control.put(buf, control)
        if hw_points:
            for n, addr in enumerate(image.addrs):
                self._debugreg[n].put(buf, addr)
            self._debugreg[7].put(buf, image.dr7)
        return bytes(buf), image

    def resume_past_hw_break(self, pc: int) -> bool:
        """Set RFLAGS.RF: the next KVM_RUN executes the instruction at ``pc`` without its
        execute breakpoint firing, and the CPU clears RF once the instruction completes; VM
        entry loads RF with the guest's RFLAGS (docs/reference/this-machine-kvm.md, "RFLAGS.RF
        is ignored", which has the SDM's words and what kvm_pvm does). One KVM_SET_REGS
        instead of a single step with the breakpoint disarmed (two KVM_SET_GUEST_DEBUG and a
        KVM_RUN more). False where the host ignores RF (kvm_pvm's instruction emulator,
        docs/reference/this-machine-kvm.md) or RIP is not ``pc`` (a code segment with a base)."""
        if not self.rf_honoured:
            return False
        regs = self.vcpu.get_regs()
        if self._rip.get(regs) != pc:
            return False
        self._rflags.put(regs, self._rflags.get(regs) | RFLAGS_RF)
        self.vcpu.set_regs(bytes(regs))
        return True

    def execute_in_place(self, pc: int, fetch: Fetch) -> bool:
        """Carry out the register-only instruction at ``pc`` (``guestdbg.arch.ExecuteInPlace``):
        on a host that ignores RF a false-condition hit then costs one register write instead of
        a single step (:mod:`.in_place` has the refusals, :mod:`.execute` the subset)."""
        return self.in_place(pc, fetch)

    def _host_uses_drs(self) -> bool:
        """The kernel was last given USE_HW_BP: the guest's own DR0-3/DR7 are not in effect."""
        return self.image.dr7 != 0  # dr_slots.encode gives DR7 0 exactly when no point is in it

    # -- decoding ---------------------------------------------------------------------------

    def decode_exit(self, run: memoryview) -> DebugEvent:
        exception, pc, dr6 = self._exit_unpack(run, self._exit_at)
        arch = (exception, dr6)
        self._bp_exit_pc = pc if exception == BP_VECTOR else None
        if exception == DB_VECTOR:
            hit = self.image.hit(dr6) if dr6 & DR_TRAP_BITS else None
            if hit is not None:
                n, _ = hit
                rw = slot_rw(self.image.dr7, n)
                addr = self.image.addrs[n]
                if rw == DR_RW_EXECUTE:
                    return DebugEvent(EventKind.HW_BREAK, pc, addr, arch=arch)
                access = dr_slots.watch_kind(rw)
                if access is not None:
                    return DebugEvent(EventKind.WATCH, pc, addr, access, arch=arch)
            if dr6 & DR6_BS:
                return DebugEvent(EventKind.STEP, pc, pc, arch=arch)
            return DebugEvent(EventKind.OTHER, pc, pc, arch=arch)
        if exception == BP_VECTOR:
            return DebugEvent(EventKind.SW_TRAP, pc, pc, arch=arch)
        return DebugEvent(EventKind.OTHER, pc, pc, arch=arch)

    # -- the guest's own events -------------------------------------------------------------

    def guest_verdict(self, ev: DebugEvent) -> Reinject | Resume:
        exception, dr6 = ev.arch
        if exception == BP_VECTOR:
            return Reinject(numbering.BP, ev.pc)
        if exception == DB_VECTOR:
            if ev.kind is EventKind.HW_BREAK or ev.kind is EventKind.WATCH:
                return Resume(
                    "DR0-3 hit in a slot whose host point is gone; the guest's own debug "
                    "registers are not in effect while the host uses them, so it is not the "
                    "guest's"
                )
            return Reinject(numbering.DB, ev.pc, {"dr6": dr6})
        return Reinject(ExceptionId(numbering.VECTOR, exception), ev.pc)

    def inject(self, r: Reinject) -> None:
        exc = r.exception
        if exc.space != numbering.VECTOR or not 0 <= exc.number < 32 or exc.number == 2:
            raise UnsupportedByArch(
                f"KVM_SET_VCPU_EVENTS injects x86 exception vectors 0-31 except NMI, not "
                f"{numbering.TABLE.describe(exc)}"
            )
        if exc.number == BP_VECTOR:
            held = self._bp_exit_pc == r.pc and self.pc() == r.pc
            self._bp_exit_pc = None
            if held:
                self.injector.queue(BP_VECTOR)
            # else: RIP stays at the int3, which raises this #BP again (module docstring)
            return
        if exc.number == DB_VECTOR:
            self.injector.queue(DB_VECTOR, dr6=r.payload.get("dr6"))
            return
        self.injector.queue(exc.number, error_code=r.payload.get("error_code"))

    def pc(self) -> int:
        """RIP, which is the linear PC in 64-bit mode (CS.base is ignored there)."""
        return self._rip.get(self.vcpu.get_regs())

    # -- attach / detach --------------------------------------------------------------------

    def attach(self) -> Mapping[str, int]:
        if not self.dregs.available:
            return {}
        return self.dregs.read()

    def detach(self, saved: Mapping[str, int]) -> None:
        if not saved or not self.dregs.available:
            return
        current = self.dregs.read()
        host = self._last_hw_image
        host_values = {f"dr{n}": host.addrs[n] for n in range(4)} | {"dr7": host.dr7}
        restore = {
            name: saved[name]
            for name in SAVED
            if name in saved
            and current[name] != saved[name]
            and host.dr7
            and current[name] == host_values[name]
        }
        if restore:
            self.dregs.write(restore)
