"""The toy arch's KVM uapi: made up, but declared the way a real arch declares its own.

A real arch copies these from ``arch/<arch>/include/uapi/asm/kvm.h``. The toy has no kernel
header, so this module is its header: big-endian (so a little-endian machine running the
emulated host cannot get away with native byte order) and the asm-generic ``_IOC`` encoding.
"""

from __future__ import annotations

from guestdbg.kvm import ioc
from guestdbg.kvm.constants import KVM_REG_SIZE_U32
from guestdbg.kvm.uapi import AbiLayout, ArchAbi

CDEF = """
struct kvm_regs {
    uint32_t gpr[8]; uint32_t pc; uint32_t sr; uint32_t epc; uint32_t esr; uint32_t cause;
    uint32_t vbar;
};
struct kvm_sregs { uint32_t pvr; uint32_t pad[3]; };
struct kvm_guest_debug_arch {
    uint64_t bp_addr[2]; uint64_t wp_addr; uint32_t bp_enable; uint32_t wp_type;
};
struct kvm_debug_exit_arch { uint32_t exception; uint32_t status; uint64_t pc; uint64_t addr; };
"""

# kvm_guest_debug.control, the per-arch high half
KVM_GUESTDBG_USE_SW_BP = 0x00010000
KVM_GUESTDBG_USE_HW_BP = 0x00020000

# kvm_guest_debug_arch.wp_type
TOY_WP_READ = 1
TOY_WP_WRITE = 2

# kvm_debug_exit_arch.status: for a trap exit, the trap's immediate; for a debug exit, what it saw
TOY_DBG_STEP = 0x01
TOY_DBG_BP0 = 0x02
TOY_DBG_BP1 = 0x04
TOY_DBG_WP = 0x08
TOY_DBG_WP_WRITE = 0x10

# ONE_REG ids: arch byte 0x7e (no real arch uses it), 32-bit values
KVM_REG_TOY = 0x7E00000000000000
KVM_REG_TOY_DEBUG_INST = KVM_REG_TOY | KVM_REG_SIZE_U32 | 0x1
"""The word the kernel traps on for software breakpoints (as ``KVM_REG_PPC_DEBUG_INST``)."""
KVM_REG_TOY_QUEUE_PRIO = KVM_REG_TOY | KVM_REG_SIZE_U32 | 0x2
"""Write-only: queue an exception by the toy KVM's priority number for the next KVM_RUN."""

CONSTANTS = {
    name: value
    for name, value in dict(globals()).items()
    if name.startswith(("KVM_", "TOY_")) and isinstance(value, int)
}

TOY_ABI = ArchAbi(
    kvm_host_arch="toy",
    byteorder="big",
    encoding=ioc.GENERIC,
    cdef=CDEF,
    structs=(
        "struct kvm_regs",
        "struct kvm_sregs",
        "struct kvm_guest_debug_arch",
        "struct kvm_debug_exit_arch",
    ),
    constants=CONSTANTS,
    header="guestdbg_toyarch/abi.py (the toy has no Linux header)",
)

_layout: AbiLayout | None = None


def layout() -> AbiLayout:
    global _layout
    if _layout is None:
        _layout = AbiLayout(TOY_ABI)
    return _layout
