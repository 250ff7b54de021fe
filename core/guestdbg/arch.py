"""Plain objects an arch plugin hands to the core through the hooks in :mod:`guestdbg.hookspecs`.

The split between hooks and objects is deliberate. Hooks are resolved once, when a session is
set up; what they return are ordinary objects whose methods the per-exit path calls directly, so
handling a debug exit costs plain Python calls and dict look-ups, never pluggy dispatch
(``bench/filter_decision.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .capabilities import DebugCapabilities
from .events import DebugEvent, Reinject, Resume
from .numbering import EquivalenceTable
from .points import DebugPoint

if TYPE_CHECKING:
    from .gdb.target import GdbArch
    from .kvm.uapi import AbiLayout
    from .vcpu import VcpuHandle, VmHandle


class OwnershipPolicy:
    """Who gets the debug facility when host and guest both want it (names used in documents)."""

    HOST_PRIORITY = "host-priority"
    """The host debugger takes the facility; the guest's settings are saved and restored on detach
    (QEMU-compatible, plus the restore)."""
    GUEST_PRIORITY = "guest-priority"
    """The guest keeps its facility; the host uses what does not conflict (arch-defined)."""

    ALL = (HOST_PRIORITY, GUEST_PRIORITY)


@dataclass(frozen=True)
class CoreInfo:
    """One CPU model (or kernel flavour) an arch serves, e.g. e500mc (BookE-HV)."""

    name: str
    description: str
    caps: DebugCapabilities
    """Static capabilities (what the listing shows); a live vCPU may report fewer."""
    register_bits: int = 64
    """Width of the core's general-purpose registers and effective addresses, in bits.

    One CPU family can have cores of both widths (PowerPC BookE: e500mc is 32-bit, e5500 and
    e6500 are 64-bit, under the same KVM code); the plugin reads this to size what it shows
    GDB and to compute addresses (a 32-bit core's branch targets wrap at 2**32), and
    ``guestdbg plugins`` states it. The core itself computes nothing with it."""

    def __post_init__(self) -> None:
        if self.register_bits not in (8, 16, 32, 64, 128):
            from .errors import InvalidRequest

            raise InvalidRequest(
                f"core {self.name!r}: register_bits must be 8, 16, 32, 64 or 128, "
                f"not {self.register_bits!r}"
            )


@dataclass(frozen=True)
class ArchInfo:
    """What ``guestdbg_arch`` returns: the arch's identity and static facts."""

    name: str
    """The arch's name in listings and on the command line (``ppc_booke``, ``x86``)."""
    kvm_host_arch: str
    """The Linux arch of the KVM host it serves (``powerpc``, ``x86_64``)."""
    description: str
    cores: tuple[CoreInfo, ...]
    numbering: EquivalenceTable
    layout: Callable[[], AbiLayout]
    """Builds (once) the arch's uapi layout, with its ioctl encoding."""
    default_core: str = ""

    def core(self, name: str | None) -> CoreInfo:
        want = name or self.default_core or self.cores[0].name
        for c in self.cores:
            if c.name == want:
                return c
        from .errors import UnknownArch

        raise UnknownArch(
            f"arch {self.name!r} has no core {want!r}; it has {[c.name for c in self.cores]}"
        )


class ArchVcpuDebug(Protocol):
    """The arch's debug operations bound to one vCPU; returned by ``guestdbg_vcpu_debug``.

    Every method here may run on the per-exit path, so implementations keep state they need
    (layout fields, the software-breakpoint word) precomputed at construction.
    """

    caps: DebugCapabilities
    """Capabilities as this vCPU's kernel reports them."""
    sw_break_insn: bytes
    """The software-breakpoint instruction, read from the vCPU where the kernel reports it."""

    def encode_guest_debug(
        self, hw_points: Sequence[DebugPoint], step: bool, sw_breaks: bool
    ) -> bytes | None:
        """The ``struct kvm_guest_debug`` bytes for this host state (all-zero control = off),
        or None to leave the kernel's guest-debug state alone: no KVM_SET_GUEST_DEBUG at all
        (e.g. when a policy gives the guest the facility and even a disabling call would
        clear the guest's settings)."""
        ...

    def decode_exit(self, run: memoryview) -> DebugEvent:
        """Turn ``kvm_run``'s ``kvm_debug_exit_arch`` into a generic event, without judging it."""
        ...

    def guest_verdict(self, ev: DebugEvent) -> Reinject | Resume:
        """For an event no host point claimed: how the hardware would have delivered it."""
        ...

    def inject(self, r: Reinject) -> None:
        """Deliver ``r`` into the vCPU (before its next KVM_RUN)."""
        ...

    def pc(self) -> int:
        """The vCPU's current program counter (for stops and stepping decisions)."""
        ...

    # Optional members, each with its own protocol below so a plugin can declare and
    # type-check them: ``after_guest_debug`` (:class:`AfterGuestDebug`),
    # ``resume_past_hw_break`` (:class:`ResumePastHwBreak`), ``execute_in_place``
    # (:class:`ExecuteInPlace`) and, when ``caps.step_via_sw``,
    # ``step_targets`` (:class:`StepTargets`).

    def attach(self) -> Mapping[str, int]:
        """The host debugger attaches: note (and return) the guest's own debug settings."""
        ...

    def detach(self, saved: Mapping[str, int]) -> None:
        """The host debugger leaves: give the guest back what ``attach`` saved."""
        ...


class AfterGuestDebug(Protocol):
    """Optional member of :class:`ArchVcpuDebug` (the session looks it up once per vCPU)."""

    def after_guest_debug(self) -> None:
        """Called right after each KVM_SET_GUEST_DEBUG, for kernels that apply part of the new
        state only at a later register write (BookE forces MSR[DE] only in kvmppc_set_msr)."""
        ...


class ResumePastHwBreak(Protocol):
    """Optional member of :class:`ArchVcpuDebug` (the session looks it up once per vCPU)."""

    def resume_past_hw_break(self, pc: int) -> bool:
        """The vCPU stopped at the host's hardware instruction breakpoint at ``pc``, which
        stays armed: make its next KVM_RUN execute that instruction without the breakpoint
        firing again, then the breakpoint is in effect again by itself (x86: RFLAGS.RF).
        Called on the vCPU's thread, out of KVM_RUN, for a hit whose condition was false.
        Return False where this host cannot do it (the session then single-steps past the
        point with it disarmed for that step); nothing may have changed then."""
        ...


class ExecuteInPlace(Protocol):
    """Optional member of :class:`ArchVcpuDebug` (the session looks it up once per vCPU)."""

    def execute_in_place(self, pc: int, fetch: Callable[[int, int], bytes]) -> bool:
        """The vCPU stopped at a host breakpoint at ``pc`` (a trap word or an instruction
        compare, which stays armed) whose condition was false, and it was running freely (not
        stepping for the debugger, nothing pending to inject). If the arch can carry out the
        guest's instruction at ``pc`` itself exactly as the CPU would - registers only: no
        memory access, no exception, no debug event of the guest's own that the CPU would
        raise at it - write the resulting registers and return True: the next KVM_RUN goes on
        after that instruction. Otherwise return False with nothing changed, and the session
        single-steps past the point with it taken out for that step.

        ``fetch(addr, length)`` reads guest code through this vCPU's MMU in the debugger's view
        (trap words show the guest's own bytes; raises ``GuestDebugError`` outside guest RAM).

        Why: a step past a breakpoint costs two more KVM_SET_GUEST_DEBUG, a KVM_RUN and, for a
        trap word, two writes of it (and on the emulated hosts a re-translation of its block
        each time); carrying the instruction out costs one KVM_SET_REGS. Called on the vCPU's
        thread, out of KVM_RUN. Every instruction an arch accepts must be checked against an
        independent implementation (the real CPU through /dev/kvm, or another emulator)."""
        ...


class StepTargets(Protocol):
    """Optional member of :class:`ArchVcpuDebug`, required when ``caps.step_via_sw``."""

    def step_targets(self) -> list[int]:
        """The addresses execution can continue at after the instruction at the PC
        (fall-through, branch target, interrupt vector); raise UnsupportedByArch when one
        cannot be known. The session plants a trap word at each for a single step."""
        ...


@dataclass(frozen=True)
class HostFactory:
    """An emulated KVM host an arch plugin offers (returned by ``guestdbg_emulated_hosts``)."""

    name: str
    arch: str
    core: str
    description: str
    create_vm: Callable[..., VmHandle]
    """``create_vm(elf_path, smp=1, **options)`` -> a VM whose guest is loaded and halted."""


@dataclass(frozen=True)
class VcpuDebugRequest:
    """What ``guestdbg_vcpu_debug`` is given: the vCPU and the choices the session made."""

    arch: ArchInfo
    core: CoreInfo
    vm: VmHandle
    vcpu: VcpuHandle
    policy: str = OwnershipPolicy.HOST_PRIORITY
    options: Mapping[str, object] = field(default_factory=dict)


GdbArchFactory = Callable[[ArchInfo, CoreInfo], "GdbArch"]
Points = Sequence[DebugPoint]
