"""The differences between the emulated host and this machine's /dev/kvm that are right as they
are, each with the primary source that explains it; ``docs/fidelity.md`` has the same rows
(``tests/fidelity/test_x86_differences.py`` checks that both name the same keys).

:func:`explain` is the arch's :data:`guestdbg.fidelity.Explain`, plus what only the runner
knows at a stop: which status flags may be undefined there (from the program's
:attr:`~.generator.ProgramLayout.undefined_at`).
"""

from __future__ import annotations

from collections.abc import Mapping

from guestdbg.fidelity import KnownDifference
from guestdbg.kvm import constants as C

from .flags import STATUS

UNDEFINED_FLAGS = KnownDifference(
    "x86-undefined-flags",
    "RFLAGS differs only in status flags the instruction that set them leaves undefined "
    "(SF/ZF/AF/PF after MUL/IMUL, AF after logic ops and shifts, OF after multi-bit shifts and "
    "rotates, OF/SF/AF/PF after BT*, all after DIV/IDIV, all but ZF after BSF/BSR); KVM's "
    "emulator runs the host CPU's own instruction, QEMU's TCG computes its own values",
    "Intel SDM vol. 2, 'Flags Affected' of each instruction; arch/x86/kvm/emulate.c fastop()",
)
EMULATOR_EXIT_DR7 = KnownDifference(
    "x86-emulator-exit-dr7",
    "debug.dr7 of a single-step KVM_EXIT_DEBUG: the kvm_pvm host emulates CPL0 code, and the "
    "emulator's step exit writes exception, pc and dr6 but leaves dr7 as it was (0); the "
    "emulated host follows VMX, whose #DB exit reports the guest's DR7 (0x400 here)",
    "arch/x86/kvm/x86.c kvm_vcpu_do_singlestep / kvm_inject_emulated_db (no dr7); "
    "arch/x86/kvm/vmx/vmx.c handle_exception_nmi (debug.arch.dr7 = GUEST_DR7)",
)

EMULATOR_HLT_STEP = KnownDifference(
    "x86-emulator-hlt-step",
    "single-stepping HLT: the kvm_pvm host emulates it (emulate.c em_hlt only requests the halt) "
    "and the step's KVM_EXIT_DEBUG, pc past the hlt, is what userspace sees; on VMX the HLT "
    "exit overwrites the step's exit and userspace sees KVM_EXIT_HLT (the emulated host)",
    "arch/x86/kvm/emulate.c x86_emulate_insn case 0xf4 (ops->halt); arch/x86/kvm/x86.c "
    "x86_emulate_instruction (kvm_vcpu_do_singlestep after writeback) and kvm_emulate_halt "
    "('we might be squashing a GUESTDBG_SINGLESTEP-triggered KVM_EXIT_DEBUG here')",
)
EMULATOR_REP_BATCH = KnownDifference(
    "x86-emulator-rep-batch",
    "a REP string instruction takes one step per iteration on the hardware (and the emulated "
    "host: RIP stays on it, RCX counts down); KVM's emulator runs up to 1024 iterations in one "
    "step, stops on the instruction with RCX = 0 and RFLAGS.RF set, and completes it in the "
    "next step (one step when REPE/REPNE ends early or RCX starts at 0). The differential "
    "compares both at the instruction's completion and counts the different number of stops",
    "Intel SDM vol. 2 'REP/REPE/REPZ/REPNE/REPNZ' (a repeated string operation is suspended "
    "between iterations with RIP on the instruction); arch/x86/kvm/emulate.c x86_emulate_insn "
    "(RF set for String with rep_prefix, EMULATION_RESTART while RCX & 0x3ff, 'goto done' "
    "skipping the RIP writeback when RCX reaches 0)",
)

STEP_TF_IN_FRAME = KnownDifference(
    "x86-kvm-step-tf-in-frame",
    "an exception raised by the instruction a KVM_GUESTDBG_SINGLESTEP step starts at (the RIP "
    "of KVM_SET_GUEST_DEBUG) is pushed with RFLAGS.TF set: KVM's own step flag, which the "
    "handler's IRETQ then hands to the guest as its own single-step (it takes a #DB). The "
    "emulated host steps without TF and pushes the guest's RFLAGS",
    "arch/x86/kvm/x86.c __kvm_set_rflags / kvm_arch_vcpu_ioctl_set_guest_debug "
    "(singlestep_rip); Intel SDM vol. 3 §6.14 (the frame holds RFLAGS as it was)",
)

KNOWN: tuple[KnownDifference, ...] = (
    UNDEFINED_FLAGS, EMULATOR_EXIT_DR7, EMULATOR_HLT_STEP, EMULATOR_REP_BATCH, STEP_TF_IN_FRAME,
)  # fmt: skip
_EXIT_NAMES = frozenset({"exit", "debug.exception", "debug.pc", "debug.dr6", "debug.dr7"})


def explain(
    name: str,
    reference: int | None,
    host: int | None,
    reference_state: Mapping[str, int | None],
    *,
    undefined_flags: int = 0,
    halted: int | None = None,
) -> KnownDifference | None:
    """``undefined_flags``: the status flags that may be undefined at this stop; ``halted``:
    the address after the program's final ``hlt``."""
    if (
        name in _EXIT_NAMES
        and reference_state.get("exit") == C.KVM_EXIT_DEBUG
        and reference_state.get("debug.pc") == halted
        and (host == C.KVM_EXIT_HLT if name == "exit" else host is None)
    ):
        return EMULATOR_HLT_STEP
    if reference is None or host is None:
        return None
    if name == "rflags" and (reference ^ host) & ~(undefined_flags & STATUS) == 0:
        return UNDEFINED_FLAGS
    if name == "debug.dr7" and reference == 0:
        return EMULATOR_EXIT_DR7
    return None
