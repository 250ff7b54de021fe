"""What this machine's ``/dev/kvm`` really delivers for x86 guest debugging, found by trying it.

``KVM_CAP_SET_GUEST_DEBUG2`` names the control bits a kernel *accepts*, not what reaches
userspace: the paravirtual ``kvm_pvm`` host accepts ``KVM_GUESTDBG_USE_SW_BP`` and
``USE_HW_BP``, yet runs guest CPL0 code in KVM's instruction emulator, which cannot emulate
``int3`` (``KVM_EXIT_INTERNAL_ERROR``, emulation failure) and has no data breakpoints
(docs/reference/this-machine-kvm.md). A breakpoint accepted there leaves the guest stuck, a
watchpoint never fires. So before the first session on a real ``/dev/kvm`` accepts a point, a
probe VM (2 MiB, one vCPU in 64-bit long mode at CPL0, as :mod:`guestdbg_x86.boot` starts guests)
tries each facility once, each try one ``KVM_RUN`` bounded by a kick:

* ``int3`` with ``USE_SW_BP``: a ``KVM_EXIT_DEBUG`` with exception 3 at the ``int3``?
* an execute breakpoint in DR0 (``USE_HW_BP``): exception 1, DR6.B0, at the address?
* ``SINGLESTEP``: exception 1, DR6.BS, one instruction on?
* a write watchpoint in DR0 over a store: exception 1, DR6.B0?
* the resume flag: RFLAGS.RF set at an execute breakpoint in DR0, does the instruction run
  past it, as RF does on the hardware for one instruction, loaded by VM entry with the guest's
  RFLAGS (docs/reference/this-machine-kvm.md, "RFLAGS.RF is ignored")? Not a point kind: where it is
  delivered a hit whose condition is false resumes with RF set instead of a single step with
  the breakpoint disarmed (:meth:`guestdbg_x86.debugops.X86VcpuDebug.resume_past_hw_break`).

What is not delivered is refused, with the reason, when a point is inserted
(:attr:`guestdbg.capabilities.DebugCapabilities.refused`). The result is kept for the process's
life, per device. When the probe cannot run (no permission, the kick signal has no handler on a
thread that may install one) the kernel's word stands, completed by what this module knows of
``kvm_pvm``. Emulated hosts are never probed: they are models of VMX and deliver everything. A
VMM that binds vCPUs itself (``Registry.vcpu_debug``) can skip the probe with
``VcpuDebugRequest(..., options={"probe_host": False})``; the kernel's word then stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from guestdbg.capabilities import DebugCapabilities
from guestdbg.errors import GuestDebugError
from guestdbg.host_report import HostReport, ProbeFinding, kvm_module
from guestdbg.kvm import constants as C
from guestdbg.points import WATCH_KINDS, DebugPoint, PointKind

from . import abi, boot, dr_slots, kernel_caps
from .debugregs import DR6_BS, DR_TRAP0

log = logging.getLogger(__name__)

RAM = 2 << 20
CODE = 0x10000
DATA = 0x11000
STACK_TOP = 0x18000
RUN_LIMIT = 1.0
"""Seconds one probe KVM_RUN may take before it is kicked (then: not delivered)."""
DB_VECTOR, BP_VECTOR = 1, 3
RFLAGS_RF = 1 << 16

INT3_AT = CODE
EXEC_AT = CODE + 0x10
STEP_AT = CODE + 0x20
STORE_AT = CODE + 0x30
PROGRAM = {
    INT3_AT: bytes.fromhex("ccf4"),  # int3; hlt
    EXEC_AT: bytes.fromhex("90f4"),  # nop; hlt
    STEP_AT: bytes.fromhex("9090f4"),  # nop; nop; hlt
    STORE_AT: bytes.fromhex("48890425") + DATA.to_bytes(4, "little") + b"\xf4",  # mov %rax,DATA
}
STORE_LENGTH = 8

SW_BREAK_REFUSED = (
    "this kernel reports int3 at CPL0 as an emulation failure (KVM_EXIT_INTERNAL_ERROR), not "
    "as a debug exit: use hbreak"
)
WATCH_REFUSED = (
    "this kernel never fires data breakpoints at guest CPL0 (KVM's instruction emulator has "
    "none): no hardware watchpoints; 'set can-use-hw-watchpoints 0' makes GDB single-step "
    "instead"
)

KNOWN_KERNELS: dict[str, dict[PointKind, str]] = {
    "kvm_pvm": {PointKind.SW_BREAK: SW_BREAK_REFUSED}
    | dict.fromkeys(sorted(WATCH_KINDS, key=lambda k: k.value), WATCH_REFUSED),
}
"""Refusals known from a kernel's name alone, for when it cannot be probed."""


@dataclass(frozen=True, slots=True)
class _Exit:
    reason: int
    exception: int = -1
    pc: int = -1
    dr6: int = 0
    suberror: int = -1

    def describe(self) -> str:
        name = C.exit_name(self.reason)
        if self.reason == C.KVM_EXIT_DEBUG:
            return f"{name}, exception {self.exception}, pc {self.pc:#x}, dr6 {self.dr6:#x}"
        if self.reason == C.KVM_EXIT_INTERNAL_ERROR:
            what = " emulation failure" if self.suberror == 1 else ""
            return f"{name} (suberror {self.suberror}{what})"
        if self.reason == C.KVM_EXIT_INTR:
            return f"no exit within {RUN_LIMIT} s"
        return name


class _ProbeVm:
    """The probe's VM: its program at CODE, one vCPU at CPL0."""

    def __init__(self, device: str) -> None:
        from guestdbg.kvm.device import Kvm

        self.layout = abi.layout()
        self.kvm = Kvm(self.layout, device)
        try:
            self.vm = self.kvm.create_vm()
            self.vm.add_memory(0, RAM)
            self.vcpu = self.vm.create_vcpu()
            cr3, gdt, limit = boot.write_boot_tables(self.vm, RAM)
            for addr, code in PROGRAM.items():
                self.vm.write_phys(addr, code)
            boot.enter_long_mode(self.vcpu, self.layout, cr3=cr3, gdt=(gdt, limit), idt=(0, 0))
        except BaseException:
            self.kvm.close()
            raise
        f = self.layout.field
        self._control = f("struct kvm_guest_debug", "control")
        self._debugreg = [f("struct kvm_guest_debug", "arch", "debugreg", n) for n in range(8)]
        debug = ("struct kvm_run", "debug", "arch")
        self._exception = f(*debug, "exception")
        self._pc = f(*debug, "pc")
        self._dr6 = f(*debug, "dr6")
        self._suberror = f("struct kvm_run", "internal", "suberror")

    def run(
        self, rip: int, control: int, points: list[DebugPoint] | None = None, rflags: int = 0
    ) -> _Exit:
        """One KVM_RUN from ``rip`` with this guest-debug state (and these RFLAGS bits set),
        kicked after RUN_LIMIT."""
        dbg = self.layout.new("struct kvm_guest_debug")
        self._control.put(dbg, control)
        if points:
            image = dr_slots.encode(points)
            for n, addr in enumerate(image.addrs):
                self._debugreg[n].put(dbg, addr)
            self._debugreg[7].put(dbg, image.dr7)
        boot.start_at(self.vcpu, self.layout, rip, STACK_TOP)
        if rflags:
            regs = self.vcpu.get_regs()
            field = self.layout.field("struct kvm_regs", "rflags")
            field.put(regs, field.get(regs) | rflags)
            self.vcpu.set_regs(bytes(regs))
        self.vcpu.set_guest_debug(bytes(dbg))
        timer = threading.Timer(RUN_LIMIT, self.vcpu.kick)
        timer.start()
        try:
            reason = self.vcpu.run()
        finally:
            timer.cancel()
        run = self.vcpu.kvm_run
        if reason == C.KVM_EXIT_DEBUG:
            return _Exit(reason, self._exception.get(run), self._pc.get(run), self._dr6.get(run))
        if reason == C.KVM_EXIT_INTERNAL_ERROR:
            return _Exit(reason, suberror=self._suberror.get(run))
        return _Exit(reason)

    def close(self) -> None:
        self.kvm.close()


def _debug(ex: _Exit, exception: int, pc: int, dr6_bit: int = 0) -> bool:
    return (
        ex.reason == C.KVM_EXIT_DEBUG
        and ex.exception == exception
        and ex.pc == pc
        and (not dr6_bit or bool(ex.dr6 & dr6_bit))
    )


ENABLE = C.KVM_GUESTDBG_ENABLE
RESUME_FLAG = "resume flag"
TRIES: tuple[tuple[str, Callable[[_ProbeVm], _Exit], Callable[[_Exit], bool]], ...] = (
    (
        "int3 at CPL0 (KVM_GUESTDBG_USE_SW_BP)",
        lambda p: p.run(INT3_AT, ENABLE | abi.KVM_GUESTDBG_USE_SW_BP),
        lambda ex: _debug(ex, BP_VECTOR, INT3_AT),
    ),
    (
        "execute breakpoint at CPL0 (DR0, KVM_GUESTDBG_USE_HW_BP)",
        lambda p: p.run(
            EXEC_AT, ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, [DebugPoint(PointKind.HW_BREAK, EXEC_AT)]
        ),
        lambda ex: _debug(ex, DB_VECTOR, EXEC_AT, DR_TRAP0),
    ),
    (
        "single step at CPL0 (KVM_GUESTDBG_SINGLESTEP)",
        lambda p: p.run(STEP_AT, ENABLE | C.KVM_GUESTDBG_SINGLESTEP),
        lambda ex: _debug(ex, DB_VECTOR, STEP_AT + 1, DR6_BS),
    ),
    (
        "write watchpoint at CPL0 (DR0 RW=01, KVM_GUESTDBG_USE_HW_BP)",
        lambda p: p.run(
            STORE_AT,
            ENABLE | abi.KVM_GUESTDBG_USE_HW_BP,
            [DebugPoint(PointKind.WATCH_WRITE, DATA, STORE_LENGTH)],
        ),
        lambda ex: (
            ex.reason == C.KVM_EXIT_DEBUG and ex.exception == DB_VECTOR and bool(ex.dr6 & DR_TRAP0)
        ),
    ),
    (
        RESUME_FLAG + " past an execute breakpoint (DR0, RFLAGS.RF)",
        lambda p: p.run(
            EXEC_AT,
            ENABLE | abi.KVM_GUESTDBG_USE_HW_BP,
            [DebugPoint(PointKind.HW_BREAK, EXEC_AT)],
            RFLAGS_RF,
        ),
        lambda ex: ex.reason == C.KVM_EXIT_HLT,  # the nop ran, the hlt after it exited
    ),
)
"""What is tried, how, and what a delivered facility's exit looks like."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    device: str
    module: str
    """The KVM module serving the device (:func:`guestdbg.host_report.kvm_module`)."""
    findings: tuple[ProbeFinding, ...]
    seconds: float
    unprobed: str = ""
    said: kernel_caps.KernelCaps | None = None
    """What the kernel says it offers (KVM_CHECK_EXTENSION on the probe VM)."""

    def delivered(self, feature_prefix: str) -> bool | None:
        for f in self.findings:
            if f.feature.startswith(feature_prefix):
                return f.delivered
        return None


def probe(device: str = "/dev/kvm") -> ProbeResult:
    """Run every try on a fresh probe VM (uncached: :func:`probed` keeps the result)."""
    module = kvm_module()
    start = time.perf_counter()
    try:
        pvm = _ProbeVm(device)
    except GuestDebugError as e:
        return ProbeResult(device, module, (), time.perf_counter() - start, str(e))
    findings = []
    try:
        said = kernel_caps.probe(pvm.vm)
        for feature, attempt, ok in TRIES:
            t0 = time.perf_counter()
            try:
                ex = attempt(pvm)
                delivered, detail = ok(ex), ex.describe()
            except GuestDebugError as e:
                delivered, detail = False, str(e)
            findings.append(ProbeFinding(feature, delivered, detail, time.perf_counter() - t0))
    finally:
        pvm.close()
    return ProbeResult(device, module, tuple(findings), time.perf_counter() - start, said=said)


_lock = threading.Lock()
_cache: dict[str, ProbeResult] = {}


def probed(device: str = "/dev/kvm") -> ProbeResult:
    """:func:`probe`'s result for ``device``, run once per process."""
    with _lock:
        result = _cache.get(device)
        if result is None:
            result = _cache[device] = probe(device)
            if result.unprobed:
                log.warning("%s could not be probed: %s", device, result.unprobed)
        return result


def refusals(result: ProbeResult) -> dict[PointKind, str]:
    """The point kinds this host does not deliver, with the reason for each."""
    if result.unprobed:
        return dict(KNOWN_KERNELS.get(result.module, {}))
    out: dict[PointKind, str] = {}
    if result.delivered("int3") is False:
        out[PointKind.SW_BREAK] = SW_BREAK_REFUSED
    if result.delivered("write watchpoint") is False:
        out.update(dict.fromkeys(sorted(WATCH_KINDS, key=lambda k: k.value), WATCH_REFUSED))
    if result.delivered("execute breakpoint") is False:
        out[PointKind.HW_BREAK] = (
            "this kernel does not report an execute breakpoint at guest CPL0 as a debug exit"
        )
    return out


def resume_flag_honoured(result: ProbeResult) -> bool:
    """RFLAGS.RF lets a vCPU run past its execute breakpoint on this host (False when it was
    not probed: kvm_pvm's emulator ignores RF for the host's breakpoints,
    docs/reference/this-machine-kvm.md)."""
    return result.delivered(RESUME_FLAG) is True


def delivered_caps(caps: DebugCapabilities, result: ProbeResult) -> DebugCapabilities:
    """``caps`` with what this host does not deliver refused (among what ``caps`` offers: a
    watch kind the arch never had keeps the arch's own refusal)."""
    return caps.refusing(
        {k: why for k, why in refusals(result).items() if not k.is_watch or k in caps.watch_kinds}
    )


def report(static: DebugCapabilities, device: str = "/dev/kvm") -> HostReport:
    """``static`` (a core's listed capabilities) as this host's kernel says and delivers them:
    what a session's vCPU would get here."""
    result = probed(device)
    said = static if result.said is None else kernel_caps.debug_caps(static, result.said)
    return HostReport(
        device=device,
        kernel=result.module,
        caps=delivered_caps(said, result),
        findings=result.findings,
        seconds=result.seconds,
        unprobed=result.unprobed,
    )
