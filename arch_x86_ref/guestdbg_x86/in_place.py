"""When the x86 plugin may carry out the instruction under a breakpoint itself, and doing it.

``X86VcpuDebug.execute_in_place`` (the contract is ``guestdbg.arch.ExecuteInPlace``) hands
the vCPU's state here. The instruction is carried out (:mod:`.execute`) only when the CPU,
running it, would have done nothing but change registers; otherwise nothing is touched and the
session single-steps. Refused when:

* RIP is not ``pc``, or the vCPU is not in 64-bit mode (EFER.LMA, CS.L, not CS.D);
* RFLAGS.TF is set: the guest single-steps itself and expects its #DB after the instruction;
* an event is in flight (KVM_GET_VCPU_EVENTS): an exception or interrupt injected or pending,
  an NMI injected or pending, an SMI pending, a triple fault, an interrupt shadow (MOV SS/STI
  just ran), or the vCPU is in SMM;
* the kernel can run nested guests (KVM_CAP_NESTED_STATE): whether this vCPU is in a nested
  guest is not known without another ioctl per hit, so nothing is executed there;
* the guest's own execute breakpoint (its DR7 and DR0-3) could fire at ``pc``. While the host
  debugger uses the debug registers (KVM_GUESTDBG_USE_HW_BP) the guest's are not in effect
  (``kvm_update_dr7``), so they are read only for a trap-word hit;
* the code bytes cannot be fetched exactly as the CPU would (:mod:`.code_fetch`), both pages of
  an instruction that crosses one;
* the instruction is not in :mod:`.execute`'s subset, or the RIP after it is not canonical (a
  jump there is #GP).

The bytes decoded are the guest's own: read from guest RAM at the walked address, and where a
byte of them is an ``int3`` - which may be a trap word the debugger planted - read again
through the session's ``fetch``, which shows the original bytes under trap words.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable

from guestdbg.vcpu import VcpuEventsHandle, VcpuHandle, VmHandle

from . import abi, code_fetch
from .debugregs import DR_RW_EXECUTE, SLOTS, slot_rw
from .execute import MAX_LENGTH, Plan, Truncated, decode, execute
from .execute_alu import TF
from .guest_dregs import GuestDebugRegs

_REGS = struct.Struct("<18Q")
"""``struct kvm_regs``: rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8-r15, rip, rflags."""
_CTRL_NAMES = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer")
_CTRL = struct.Struct("<6Q")
_EVENTS_BUSY = operator.itemgetter(0, 3, 8, 11, 12, 13, 24, 25, 28)
"""From ``struct kvm_vcpu_events``, bytes at: exception.injected, exception.pending,
interrupt.injected, interrupt.shadow, nmi.injected, nmi.pending, smi.smm, smi.pending,
triple_fault.pending (the layout is checked at construction)."""
EFER_LMA = 1 << 10
KVM_CAP_NESTED_STATE = 157
"""``linux/kvm.h``: nonzero where the kernel can run nested guests (VMX/SVM in the guest)."""
INT3 = 0xCC
_PLANS_KEPT = 256

Fetch = Callable[[int, int], bytes]


class InPlace:
    """The refusal checks and the register write for one vCPU."""

    def __init__(
        self,
        vm: VmHandle,
        vcpu: VcpuHandle,
        dregs: GuestDebugRegs,
        host_uses_drs: Callable[[], bool],
    ) -> None:
        self.vm = vm
        self.vcpu = vcpu
        self.events = vcpu if isinstance(vcpu, VcpuEventsHandle) else None
        self.dregs = dregs
        self.host_uses_drs = host_uses_drs
        try:
            self.nested = bool(vm.check_extension(KVM_CAP_NESTED_STATE))
        except Exception:
            self.nested = True  # unknown: assume a nested guest could be running
        lay = abi.layout()
        sr = "struct kvm_sregs"
        self._ctrl_at = lay.offsetof(sr, "cr0")
        if [lay.offsetof(sr, r) - self._ctrl_at for r in _CTRL_NAMES] != [0, 8, 16, 24, 32, 40]:
            raise AssertionError("struct kvm_sregs: cr0, cr2, cr3, cr4, cr8, efer not contiguous")
        self._cs_l = lay.offsetof(sr, "cs", "l")
        self._cs_db = lay.offsetof(sr, "cs", "db")
        self._cs_rpl = lay.offsetof(sr, "cs", "selector")  # its low byte holds the RPL
        self._ss_dpl = lay.offsetof(sr, "ss", "dpl")
        ev = "struct kvm_vcpu_events"
        offsets = [
            lay.offsetof(ev, *p)
            for p in (
                ("exception", "injected"),
                ("exception", "pending"),
                ("interrupt", "injected"),
                ("interrupt", "shadow"),
                ("nmi", "injected"),
                ("nmi", "pending"),
                ("smi", "smm"),
                ("smi", "pending"),
                ("triple_fault", "pending"),
            )
        ]
        if offsets != [0, 3, 8, 11, 12, 13, 24, 25, 28]:
            raise AssertionError(f"struct kvm_vcpu_events is not laid out as expected: {offsets}")
        self._write: Callable[[bytes], None] = getattr(vcpu, "set_regs_at_run", vcpu.set_regs)
        """A /dev/kvm vCPU takes the registers into ``kvm_run`` for its next KVM_RUN (no ioctl,
        ``guestdbg.kvm.device.KvmVcpu.set_regs_at_run``); other vCPUs get KVM_SET_REGS."""
        self._walks = code_fetch.WalkCache()
        self._plans: dict[bytes, Plan | None] = {}
        """Decoded instructions by their code bytes (the same loop hits the same bytes)."""
        self.why = ""
        """Why the last call refused (tests and diagnostics)."""

    def _refuse(self, why: str) -> bool:
        self.why = why
        return False

    def _none(self, why: str) -> Plan | None:
        self.why = why
        return None

    def __call__(self, pc: int, fetch: Fetch) -> bool:
        if self.nested:
            return self._refuse("nested guests possible (KVM_CAP_NESTED_STATE)")
        if self.events is None:
            return self._refuse("no KVM_GET_VCPU_EVENTS")
        values = _REGS.unpack_from(self.vcpu.get_regs())
        rip, rflags = values[16], values[17]
        if rip != pc:
            return self._refuse("RIP is not the breakpoint's address")
        if rflags & TF:
            return self._refuse("RFLAGS.TF: the guest single-steps")
        sregs = self.vcpu.get_sregs()
        _, _, cr3, cr4, _, efer = _CTRL.unpack_from(sregs, self._ctrl_at)
        if not efer & EFER_LMA or not sregs[self._cs_l] or sregs[self._cs_db]:
            return self._refuse("not in 64-bit mode")
        cpl = sregs[self._ss_dpl]
        if sregs[self._cs_rpl] & 3 != cpl:
            return self._refuse("CS.RPL is not the CPL")
        if any(_EVENTS_BUSY(self.events.get_vcpu_events())):
            return self._refuse("an event is pending or injected, an interrupt shadow, or SMM")
        if not self.host_uses_drs() and self._guest_breaks_at(pc):
            return self._refuse("the guest's own execute breakpoint is at this address")
        plan = self._plan(pc, cr3, cr4, cpl, fetch)
        if plan is None:
            return False  # self.why says why
        gprs = list(values)  # kvm_regs order, as the executor takes them
        new_rip, new_flags = execute(plan, gprs, rip, rflags)
        if not code_fetch.canonical(new_rip, bool(cr4 & code_fetch.CR4_LA57)):
            # a jump there is #GP; falling through there faults at the next fetch, and a VM
            # entry with a non-canonical RIP fails on VMX: the CPU's to run, not ours
            return self._refuse("the next RIP is not canonical")
        gprs[16], gprs[17] = new_rip, new_flags
        self._write(_REGS.pack(*gprs))
        self.why = plan.text
        return True

    def _guest_breaks_at(self, pc: int) -> bool:
        """The guest's own DR7 enables an execute breakpoint at ``pc`` (or one whose length
        field makes it undefined)."""
        if not self.dregs.available:
            return True  # cannot know: assume it could
        d = self.dregs.read()
        dr7 = d["dr7"]
        for n in range(SLOTS):
            enabled = dr7 >> (2 * n) & 3 and slot_rw(dr7, n) == DR_RW_EXECUTE
            if enabled and (d[f"dr{n}"] == pc or dr7 >> (18 + 4 * n) & 3):
                return True
        return False

    def _plan(self, pc: int, cr3: int, cr4: int, cpl: int, fetch: Fetch) -> Plan | None:
        """Decode the instruction at ``pc`` from the bytes the CPU would fetch."""
        read_phys = self.vm.read_phys
        code = b""
        va = pc
        while True:
            try:
                gpa = self._walks.gpa(read_phys, cr3, cr4, cpl, va)
            except Exception:
                gpa = None  # a page table outside guest RAM
            if gpa is None:
                return self._none(f"the code at {va:#x} is not fetchable as the CPU would")
            n = min(code_fetch.PAGE - (va & 0xFFF), MAX_LENGTH - len(code))
            try:
                code += read_phys(gpa, n)
            except Exception:
                return self._none(f"the code at {va:#x} is not in guest RAM")
            view = code
            if INT3 in code:  # maybe the debugger's trap word: decode what it shows there
                try:
                    view = fetch(pc, len(code))
                except Exception:
                    return self._none("the bytes under a trap word could not be read back")
            try:
                plan = self._decode(view)
            except Truncated:
                va += n
                continue
            if plan is None:
                return self._none(f"not carried out here: {view[:8].hex()}")
            return plan

    def _decode(self, code: bytes) -> Plan | None:
        if code in self._plans:
            return self._plans[code]
        plan = decode(code)  # Truncated propagates (not kept)
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        self._plans[code] = plan
        return plan
