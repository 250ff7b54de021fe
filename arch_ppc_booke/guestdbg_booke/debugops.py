"""BookE debug operations bound to one vCPU: program, decode, judge, re-inject.

What the kernel does, and so what this module must do in userspace (fact sheet §3; read
against ``arch/powerpc/kvm/booke.c``):

* ``kvm_arch_vcpu_ioctl_set_guest_debug`` consumes ``bp[0..3]`` in order, IACs for entries with
  BREAKPOINT and DACs for the rest, so host breakpoints and watchpoints share one array in
  insertion order (as QEMU's ``kvm_arch_update_guest_debug`` builds it).
* ``kvmppc_handle_debug`` reports status BREAKPOINT with address = PC, WATCH_WRITE or WATCH_READ
  (write wins) with address = the *configured* DAC value, and status 0 for a single-step and a
  software breakpoint alike. The exit carries no PC for watchpoints, so the PC is read with
  KVM_GET_REGS: the DAC event is taken before the access with the instruction suppressed (e500
  core reference manual §8.4.2), so that PC is the accessing instruction's.
* A status-0 exit nobody claims is the guest executing the breakpoint instruction itself; the
  hardware would have raised an illegal-instruction program interrupt, so that is injected
  (ESR[PIL], SRR0 = the instruction), as QEMU's ``kvm_handle_debug`` does.
* An unmatched IAC/DAC event is dropped (RESUME): while the host debugs, the kernel ignores the
  guest's writes to IAC/DAC/DBCR (``kvmppc_booke_emulate_mtspr``), so the guest cannot have armed
  it; it is a match from a point the host just removed.

Ownership of the debug facility (``OwnershipPolicy``):

* host-priority (default, QEMU-compatible): the host programs IAC/DAC through
  KVM_SET_GUEST_DEBUG. At attach the guest's own IAC1/2 and DAC1/2 are read (ONE_REG) and
  restored on detach. The kernel offers no ioctl for DBCR0-2 (no ONE_REG id; ``kvm_sregs``'
  E_DEBUG part is not consumed), so the guest's DBCR0 enables cannot be restored by anyone but
  the guest; they stay cleared after detach until the guest writes DBCR0 again.
* guest-priority: the host never enables KVM guest debugging, so the kernel keeps delivering the
  guest's own IAC/DAC/IC/trap events to the guest (``kvmppc_handle_debug``, ``guest_debug == 0``
  branch). Host breakpoints are ``ehpriv 1`` words, which the kernel turns into KVM_EXIT_DEBUG
  from its hypervisor-privilege emulation without looking at ``guest_debug``
  (``kvmppc_handle_exit`` HV_PRIV -> ``kvmppc_e500_emul_ehpriv``). Host hardware breakpoints are
  served by such traps; host watchpoints are refused; host steps plant traps at the next
  instruction's possible addresses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from guestdbg.arch import OwnershipPolicy, VcpuDebugRequest
from guestdbg.capabilities import DebugCapabilities
from guestdbg.errors import GuestDebugError, NoFreeSlot, UnsupportedByArch
from guestdbg.events import DebugEvent, EventKind, Reinject, Resume
from guestdbg.kvm.constants import KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP
from guestdbg.points import DebugPoint, PointKind
from guestdbg.vcpu import VcpuHandle

from . import abi, numbering, regs, successors

IAC_IDS = (abi.KVM_REG_PPC_IAC1, abi.KVM_REG_PPC_IAC2)
DAC_IDS = (abi.KVM_REG_PPC_DAC1, abi.KVM_REG_PPC_DAC2)
SAVED_NAMES = ("iac1", "iac2", "dac1", "dac2")

_WATCH_TYPE = {
    PointKind.WATCH_WRITE: abi.KVMPPC_DEBUG_WATCH_WRITE,
    PointKind.WATCH_READ: abi.KVMPPC_DEBUG_WATCH_READ,
    PointKind.WATCH_ACCESS: abi.KVMPPC_DEBUG_WATCH_WRITE | abi.KVMPPC_DEBUG_WATCH_READ,
}
_SLOTS = 4  # KVMPPC_BOOKE_IAC_NUM + KVMPPC_BOOKE_DAC_NUM on e500: the kernel reads bp[0..3]


def guest_priority_caps(caps: DebugCapabilities) -> DebugCapabilities:
    """What the host may use when the guest keeps IAC/DAC: traps only."""
    return dataclasses.replace(
        caps,
        hw_breakpoints=0,
        hw_watchpoints=0,
        watch_kinds=frozenset(),
        hw_break_via_sw=True,
        step_via_sw=True,
    )


class BookeVcpuDebug:
    """``ArchVcpuDebug`` for e500mc (BookE-HV) and e500v2 (BookE-PR)."""

    def __init__(self, request: VcpuDebugRequest) -> None:
        self.vcpu: VcpuHandle = request.vcpu
        self.vm = request.vm
        self.core = request.core.name
        self.policy = request.policy
        lay = abi.layout()
        self._lay = lay
        word = self.vcpu.get_one_reg(abi.KVM_REG_PPC_DEBUG_INST)
        self.kernel_insn = word.to_bytes(4, "big")
        if self.policy == OwnershipPolicy.GUEST_PRIORITY:
            self.caps = guest_priority_caps(request.core.caps)
            self.sw_break_insn = regs.KVMPPC_INST_EHPRIV_DEBUG.to_bytes(4, "big")
        else:
            self.caps = request.core.caps
            self.sw_break_insn = self.kernel_insn
        gd = "struct kvm_guest_debug"
        self._size = lay.sizeof(gd)
        self._control = lay.field(gd, "control")
        self._bp_addr = [lay.field(gd, "arch", "bp", n, "addr") for n in range(_SLOTS)]
        self._bp_type = [lay.field(gd, "arch", "bp", n, "type") for n in range(_SLOTS)]
        self._exit_addr = lay.field("struct kvm_run", "debug", "arch", "address")
        self._exit_status = lay.field("struct kvm_run", "debug", "arch", "status")
        self._pc = lay.field("struct kvm_regs", "pc")
        self._msr = lay.field("struct kvm_regs", "msr")
        self._srr0 = lay.field("struct kvm_regs", "srr0")
        self._srr1 = lay.field("struct kvm_regs", "srr1")
        sr = "struct kvm_sregs"
        self._s_features = lay.field(sr, "u", "e", "features")
        self._s_update = lay.field(sr, "u", "e", "update_special")
        self._s_esr = lay.field(sr, "u", "e", "esr")
        self._s_ivpr = lay.field(sr, "u", "e", "ivpr")
        self._s_ivor_program = lay.field(sr, "u", "e", "ivor_low", 6)
        self._s_ivor_syscall = lay.field(sr, "u", "e", "ivor_low", 8)
        self._s_csrr0 = lay.field(sr, "u", "e", "csrr0")
        self._s_mcsrr0 = lay.field(sr, "u", "e", "mcsrr0")
        self._lr = lay.field("struct kvm_regs", "lr")
        self._ctr = lay.field("struct kvm_regs", "ctr")
        self._enabled = False
        """Whether the last kvm_guest_debug built had KVM_GUESTDBG_ENABLE."""
        self._synced: bool | None = None
        """The ENABLE state the guest's MSR was last re-synced for (None: never)."""
        self.guest_armed: dict[str, int] = {}
        """The guest's IAC/DAC values found at attach (non-zero = the guest uses them)."""

    # -- programming ------------------------------------------------------------------------

    def encode_guest_debug(
        self, hw_points: Sequence[DebugPoint], step: bool, sw_breaks: bool
    ) -> bytes | None:
        if self.policy == OwnershipPolicy.GUEST_PRIORITY:
            if hw_points or step:
                raise UnsupportedByArch(
                    "guest-priority leaves IAC/DAC/DBCR0 to the guest; the host cannot arm them"
                )
            # No ioctl at all: even a disabling KVM_SET_GUEST_DEBUG zeroes the DBCR0 that the
            # kernel keeps for host and guest alike. ehpriv traps exit without guest debug.
            return None
        buf = bytearray(self._size)
        control = 0
        self._enabled = bool(sw_breaks or step or hw_points)
        if sw_breaks:
            control |= KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP
        if step:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
        if hw_points:
            breaks = sum(1 for p in hw_points if p.kind is PointKind.HW_BREAK)
            if breaks > self.caps.hw_breakpoints or len(hw_points) - breaks > (
                self.caps.hw_watchpoints
            ):
                raise NoFreeSlot(f"{len(hw_points)} hardware points do not fit 2 IAC + 2 DAC")
            control |= KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
            for n, p in enumerate(hw_points):
                kind = (
                    abi.KVMPPC_DEBUG_BREAKPOINT
                    if p.kind is PointKind.HW_BREAK
                    else _WATCH_TYPE[p.kind]
                )
                self._bp_addr[n].put(buf, p.addr)
                self._bp_type[n].put(buf, kind)
        self._control.put(buf, control)
        return bytes(buf)

    # -- decoding ---------------------------------------------------------------------------

    def decode_exit(self, run: memoryview) -> DebugEvent:
        address = self._exit_addr.get(run)
        status = self._exit_status.get(run)
        if status & abi.KVMPPC_DEBUG_BREAKPOINT:
            return DebugEvent(EventKind.HW_BREAK, address, address, arch=status)
        if status & abi.KVMPPC_DEBUG_WATCH_WRITE:
            return DebugEvent(
                EventKind.WATCH, self.pc(), address, PointKind.WATCH_WRITE, arch=status
            )
        if status & abi.KVMPPC_DEBUG_WATCH_READ:
            return DebugEvent(
                EventKind.WATCH, self.pc(), address, PointKind.WATCH_READ, arch=status
            )
        return DebugEvent(EventKind.STEP_OR_SW_TRAP, address, address, arch=status)

    # -- the guest's own events -------------------------------------------------------------

    def guest_verdict(self, ev: DebugEvent) -> Reinject | Resume:
        if ev.kind is EventKind.STEP_OR_SW_TRAP:
            word = self._word_at(ev.pc)
            if word is not None and word not in (self.kernel_insn, self.sw_break_insn):
                return Resume(
                    "status-0 exit at a word that is no longer a breakpoint instruction "
                    "(a host breakpoint removed while its exit was in flight)"
                )
            return Reinject(numbering.PROGRAM, ev.pc, {"esr": regs.ESR_PIL, "srr0": ev.pc})
        return Resume(
            "IAC/DAC event that matches no host point: while the host debugs, the kernel "
            "ignores the guest's IAC/DAC writes, so it is a match from a point just removed"
        )

    def _word_at(self, pc: int) -> bytes | None:
        try:
            gpa = self.vcpu.translate(pc)
        except GuestDebugError:
            return None
        if gpa is None:
            return None
        try:
            return self.vm.read_phys(gpa, 4)
        except GuestDebugError:
            return None

    def inject(self, r: Reinject) -> None:
        """Deliver a program interrupt as ``kvmppc_booke_irqprio_deliver`` does for PROGRAM:
        SRR0/SRR1 = the faulting PC and MSR, ESR = the syndrome, MSR &= CE|ME|DE, and
        NIP = IVPR | IVOR6. Everything goes through GET/SET_REGS and GET/SET_SREGS, which is
        all the kernel lets userspace reach (QEMU does the same through ppc_cpu_do_interrupt)."""
        if r.exception != numbering.PROGRAM:
            raise UnsupportedByArch(
                f"only program interrupts can be injected through the KVM BookE API, not "
                f"{numbering.TABLE.describe(r.exception)}"
            )
        v = self.vcpu
        rg = v.get_regs()
        sr = v.get_sregs()
        msr = self._msr.get(rg)
        self._srr0.put(rg, r.payload.get("srr0", r.pc))
        self._srr1.put(rg, msr)
        self._pc.put(rg, self._s_ivpr.get(sr) | self._s_ivor_program.get(sr))
        self._msr.put(rg, msr & (regs.MSR_CE | regs.MSR_ME | regs.MSR_DE))
        self._s_esr.put(sr, r.payload.get("esr", regs.ESR_PIL))
        self._s_features.put(sr, abi.KVM_SREGS_E_BASE)  # write back only the ESR's group
        self._s_update.put(sr, 0)
        v.set_sregs(bytes(sr))
        v.set_regs(bytes(rg))

    def pc(self) -> int:
        return self._pc.get(self.vcpu.get_regs())

    def after_guest_debug(self) -> None:
        """Write the registers back after KVM_SET_GUEST_DEBUG turned guest debugging on or off:
        the kernel forces MSR[DE] (and on PR syncs the shadow MSR) only in ``kvmppc_set_msr`` via
        ``kvmppc_vcpu_sync_debug``, not in the ioctl itself. QEMU gets this for free by writing
        all registers before every KVM_RUN; without it an IAC or a single step never fires while
        the guest runs with MSR[DE]=0. Between two enabled states DE stays forced (the guest
        cannot clear it: MSRP[DEP] on HV, emulated mtmsr on PR), so nothing is written then."""
        if self._enabled == self._synced:
            return
        self.vcpu.set_regs(bytes(self.vcpu.get_regs()))
        self._synced = self._enabled

    def step_targets(self) -> list[int]:
        """Successor addresses of the instruction at the PC (guest-priority stepping)."""
        rg = self.vcpu.get_regs()
        sr = self.vcpu.get_sregs()
        pc = self._pc.get(rg)
        word = self._word_at(pc)
        if word is None:
            raise UnsupportedByArch(f"cannot read the instruction at {pc:#x} to step it")
        cpu = successors.CpuView(
            pc=pc,
            lr=self._lr.get(rg),
            ctr=self._ctr.get(rg),
            srr0=self._srr0.get(rg),
            csrr0=self._s_csrr0.get(sr),
            mcsrr0=self._s_mcsrr0.get(sr),
            ivpr=self._s_ivpr.get(sr),
            ivor_syscall=self._s_ivor_syscall.get(sr),
            ivor_program=self._s_ivor_program.get(sr),
        )
        return successors.successors(int.from_bytes(word, "big"), cpu)

    # -- attach / detach --------------------------------------------------------------------

    def attach(self, policy: str) -> Mapping[str, int]:
        saved = {}
        for name, reg_id in zip(SAVED_NAMES, IAC_IDS + DAC_IDS, strict=True):
            saved[name] = self.vcpu.get_one_reg(reg_id)
        self.guest_armed = {k: v for k, v in saved.items() if v}
        return saved

    def detach(self, saved: Mapping[str, int]) -> None:
        if self.policy == OwnershipPolicy.GUEST_PRIORITY:
            return  # nothing of the guest's was touched
        for name, reg_id in zip(SAVED_NAMES, IAC_IDS + DAC_IDS, strict=True):
            if name in saved:
                self.vcpu.set_one_reg(reg_id, saved[name])
