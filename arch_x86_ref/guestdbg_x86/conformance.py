"""The x86 plugin's answer to ``guestdbg_conformance``: ``guests/conformance.S`` on the emulated
x86-64 host, and the guest's own debug events as KVM x86 reports them.

Both exits come from ``handle_exception_nmi`` (vmx.c) with the vector, the linear RIP and DR6:
the guest's own int3 exits with USE_SW_BP as #BP with RIP at the int3, and the plugin re-injects
#BP (vector 3); the guest's own RFLAGS.TF step exits with SINGLESTEP or USE_HW_BP as #DB with
DR6.BS, and the plugin re-injects #DB (vector 1) with that DR6 as its payload.
"""

from __future__ import annotations

from collections.abc import Callable

from guestdbg.demo.elf_info import symbols
from guestdbg.kvm.constants import KVM_EXIT_DEBUG
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.testing.build_dir import build_dir
from guestdbg.testing.profile import ConformanceProfile, GuestEventCase
from guestdbg.vcpu import VmHandle

from . import numbering
from .debugregs import DR6_ACTIVE_LOW, DR6_BS
from .emuhost.factory import HOST
from .guests.build import PACKAGE_DIR, build

OUTSIDE_RAM = 0x10000000
"""Far above the 4 MiB of RAM; the boot tables identity-map only RAM."""


def debug_exit_image(vector: int, pc: int, dr6: int) -> Callable[[AbiLayout], bytes]:
    """``kvm_run`` as ``handle_exception_nmi`` leaves it: KVM_EXIT_DEBUG, exception, pc, dr6."""

    def image(layout: AbiLayout) -> bytes:
        run = layout.new("struct kvm_run")
        layout.field("struct kvm_run", "exit_reason").put(run, KVM_EXIT_DEBUG)
        for name, value in (("exception", vector), ("pc", pc), ("dr6", dr6)):
            layout.field("struct kvm_run", "debug", "arch", name).put(run, value)
        return bytes(run)

    return image


def profile() -> ConformanceProfile:
    elf = build(PACKAGE_DIR / "conformance.S", build_dir("x86"))
    sym = symbols(elf)

    def make_vm() -> VmHandle:
        return HOST.create_vm(elf)

    return ConformanceProfile(
        make_vm=make_vm,
        code_addrs=[sym[f"code{n}"] for n in range(5)],
        data_addr=sym["watched"],
        outside_ram=OUTSIDE_RAM,
        guest_events=[
            GuestEventCase(
                name="the guest's own int3",
                kvm_run=debug_exit_image(numbering.BP.number, sym["own_int3"], DR6_ACTIVE_LOW),
                expected=numbering.BP,
            ),
            GuestEventCase(
                name="the guest's own RFLAGS.TF single step",
                kvm_run=debug_exit_image(
                    numbering.DB.number, sym["own_step"], DR6_ACTIVE_LOW | DR6_BS
                ),
                expected=numbering.DB,
            ),
        ],
    )
