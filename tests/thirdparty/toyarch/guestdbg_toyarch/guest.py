"""The guest the conformance kit runs, and the guest's own debug events it must hand back.

The loop touches every address in ``CODE`` and loads and stores ``counter`` on every pass; the
trap and debug handlers count their exceptions and return, so whatever is re-injected lands
somewhere that works.
"""

from __future__ import annotations

from collections.abc import Callable

from guestdbg.kvm.constants import KVM_EXIT_DEBUG
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.numbering import ExceptionId

from . import abi
from .numbering import DEBUG, DEBUG_ID, TRAP, TRAP_ID
from .vm import ToyVm

SOURCE = """
        .org 0x10               # vbar = 0: vector 1, trap
        ld   r6, traps(r0)
        addi r6, r6, 1
        st   r6, traps(r0)
        rfe
        .org 0x20               # vector 2, debug
        rfe
        .org 0x100
_start: li   r1, counter
loop:   ld   r2, 0(r1)
        addi r2, r2, 1
        st   r2, 0(r1)
        nop
        b    loop
        .org 0x1000
counter: .word 0
traps:  .word 0
"""


def make_vm() -> ToyVm:
    vm = ToyVm()
    vm.load(SOURCE)
    return vm


def labels() -> dict[str, int]:
    from .isa import assemble

    return assemble(SOURCE)[1]


def debug_exit(exception: int, status: int, pc: int) -> Callable[[AbiLayout], bytes]:
    """A ``kvm_run`` image as the toy kernel writes it for the guest's own event at ``pc``."""

    def image(layout: AbiLayout) -> bytes:
        run = bytearray(layout.sizeof("struct kvm_run"))
        layout.field("struct kvm_run", "exit_reason").put(run, KVM_EXIT_DEBUG)
        arch = ("struct kvm_run", "debug", "arch")
        layout.field(*arch, "exception").put(run, exception)
        layout.field(*arch, "status").put(run, status)
        layout.field(*arch, "pc").put(run, pc)
        layout.field(*arch, "addr").put(run, pc)
        return bytes(run)

    return image


GUEST_EVENTS: tuple[tuple[str, int, int, ExceptionId], ...] = (
    ("the guest's own trap instruction (trap 7)", TRAP, 7, TRAP_ID),
    ("the guest's own breakpoint word (trap 0xffff)", TRAP, 0xFFFF, TRAP_ID),
    ("the guest's own sr.SS single step", DEBUG, abi.TOY_DBG_STEP, DEBUG_ID),
)
"""(name, exit exception, exit status, what guest_verdict re-injects)."""
