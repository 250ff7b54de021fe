"""The BookE plugin's answer to ``guestdbg_conformance``: ``guests/conformance.S`` on the
emulated e500 host of the core (built 64-bit, in 64-bit mode, on e5500 and e6500),
and the guest's own debug events as KVM BookE reports them.

A core whose emulated host is not installed gets :class:`ProfileUnavailable`, and the kit skips
that core's checks with the reason (the 64-bit hosts come with their own package change).

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
from guestdbg.testing.profile import ConformanceProfile, GuestEventCase, ProfileUnavailable
from guestdbg.vcpu import VmHandle

from . import abi, numbering
from .emuhost.factory import HOSTS
from .guests.build import PACKAGE_DIR, build, build64
from .plugin import INFO

OUTSIDE_RAM = 0xF0000000
"""Above the 64 MiB of RAM and the host-I/O page; the boot TLB entry does not map it."""
OUTSIDE_RAM_64 = 0x1_0010_0000
"""For the 64-bit guest, which runs in 64-bit mode: above 4 GiB, unmapped. Cut to 32 bits it
would be ``_start``, so a plugin that truncated addresses would accept a breakpoint there."""


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
    try:
        wide = INFO.core(core).register_bits == 64
    except UnknownArch:
        raise UnknownArch(f"the BookE plugin has no core {core!r}") from None
    host = next((h for h in HOSTS if h.core == core), None)
    if host is None:
        raise ProfileUnavailable(
            f"no emulated host for core {core!r} is installed (the BookE plugin's hosts: "
            f"{', '.join(h.name for h in HOSTS)})"
        )
    if wide:
        elf = build64(PACKAGE_DIR / "conformance.S", build_dir("ppc_booke"))
    else:
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
        outside_ram=OUTSIDE_RAM_64 if wide else OUTSIDE_RAM,
        guest_events=[own_break, own_ehpriv, stale_iac],
    )
