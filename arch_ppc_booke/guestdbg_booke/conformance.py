"""The BookE plugin's answer to ``guestdbg_conformance``: ``guests/conformance.S`` on the
emulated e500 host of the core, and the guest's own debug events as KVM BookE reports them.

The guest's own event that reaches userspace and goes back to the guest is the breakpoint word
(status 0, address = PC; booke.c ``kvmppc_handle_exit`` with USE_SW_BP): the plugin re-injects
the illegal-instruction program interrupt (IVOR 6, ESR[PIL]) QEMU's ``kvm_handle_debug``
injects; so is the guest's own ``ehpriv 1``, which ``kvmppc_e500_emul_ehpriv`` turns into
the same exit whether or not anyone debugs (QEMU injects the same program interrupt for it;
resuming would run it again, forever). The guest's own IAC/DAC/IC events cannot reach
userspace while the host debugs (the kernel ignores the guest's debug-SPR writes then,
``kvmppc_booke_emulate_mtspr``), so an IAC match no host point claims is a stale match of a
point just removed: the plugin documents it as dropped (``expected=None``), and the kit checks
that it is dropped, with a reason, and claimed by a host breakpoint at its address.
"""

from __future__ import annotations

from collections.abc import Callable

from guestdbg.demo.elf_info import symbols
from guestdbg.errors import UnknownArch
from guestdbg.kvm.constants import KVM_EXIT_DEBUG
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.testing.build_dir import build_dir
from guestdbg.testing.profile import ConformanceProfile, GuestEventCase
from guestdbg.vcpu import VmHandle

from . import abi, numbering
from .emuhost.factory import HOSTS
from .guests.build import PACKAGE_DIR, build

OUTSIDE_RAM = 0xF0000000
"""Above the 64 MiB of RAM and the host-I/O page; the boot TLB entry does not map it."""


def debug_exit_image(address: int, status: int) -> Callable[[AbiLayout], bytes]:
    """``kvm_run`` as ``kvmppc_handle_debug`` leaves it: KVM_EXIT_DEBUG, address, status."""

    def image(layout: AbiLayout) -> bytes:
        run = layout.new("struct kvm_run")
        layout.field("struct kvm_run", "exit_reason").put(run, KVM_EXIT_DEBUG)
        layout.field("struct kvm_run", "debug", "arch", "address").put(run, address)
        layout.field("struct kvm_run", "debug", "arch", "status").put(run, status)
        return bytes(run)

    return image


def profile(core: str) -> ConformanceProfile:
    host = next((h for h in HOSTS if h.core == core), None)
    if host is None:
        raise UnknownArch(f"the BookE plugin has no emulated host for core {core!r}")
    elf = build(PACKAGE_DIR / "conformance.S", build_dir("ppc_booke"))
    sym = symbols(elf)

    def make_vm() -> VmHandle:
        return host.create_vm(elf)

    own_break = GuestEventCase(
        name="the guest's own breakpoint word 0x00dddd00 (a BUG() or kgdb trap)",
        kvm_run=debug_exit_image(sym["own_break"], 0),
        expected=numbering.PROGRAM,
    )
    own_ehpriv = GuestEventCase(
        name="the guest's own ehpriv 1 (exits as status 0 whatever guest_debug says)",
        kvm_run=debug_exit_image(sym["own_ehpriv"], 0),
        expected=numbering.PROGRAM,
    )
    stale_iac = GuestEventCase(
        name="an IAC1 match no host point claims (a breakpoint removed while its exit was queued)",
        kvm_run=debug_exit_image(sym["code1"], abi.KVMPPC_DEBUG_BREAKPOINT),
        expected=None,
    )
    return ConformanceProfile(
        make_vm=make_vm,
        code_addrs=[sym[f"code{n}"] for n in range(4)],
        data_addr=sym["watched"],
        outside_ram=OUTSIDE_RAM,
        guest_events=[own_break, own_ehpriv, stale_iac],
    )
