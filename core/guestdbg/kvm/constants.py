"""Generic KVM uapi constants (``include/uapi/linux/kvm.h``), checked by the ABI truth test.

Only generic values live here; arch control bits (``KVM_GUESTDBG_USE_SW_BP``...) are declared
by each arch plugin, because their meaning is per arch even where the value coincides.
"""

from __future__ import annotations

KVM_API_VERSION = 12

# exit reasons
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17

# generic guest-debug control bits (low 16 bits; the high 16 are per arch)
KVM_GUESTDBG_ENABLE = 0x00000001
KVM_GUESTDBG_SINGLESTEP = 0x00000002

# capabilities
KVM_CAP_SET_GUEST_DEBUG = 23
KVM_CAP_USER_MEMORY = 3
KVM_CAP_VCPU_EVENTS = 41
KVM_CAP_DEBUGREGS = 50
KVM_CAP_X86_ROBUST_SINGLESTEP = 51
KVM_CAP_ONE_REG = 70
KVM_CAP_SYNC_REGS = 74
KVM_CAP_GUEST_DEBUG_HW_BPS = 119
KVM_CAP_GUEST_DEBUG_HW_WPS = 120
KVM_CAP_EXCEPTION_PAYLOAD = 164
KVM_CAP_PPC_GUEST_DEBUG_SSTEP = 176
KVM_CAP_SET_GUEST_DEBUG2 = 195
KVM_CAP_READONLY_MEM = 81

# kvm_userspace_memory_region.flags (KVM_SET_USER_MEMORY_REGION)
KVM_MEM_LOG_DIRTY_PAGES = 0x1
KVM_MEM_READONLY = 0x2

# ONE_REG id fields
KVM_REG_ARCH_MASK = 0xFF00000000000000
KVM_REG_PPC = 0x1000000000000000
KVM_REG_X86 = 0x2000000000000000
KVM_REG_SIZE_SHIFT = 52
KVM_REG_SIZE_MASK = 0x00F0000000000000
KVM_REG_SIZE_U32 = 0x0020000000000000
KVM_REG_SIZE_U64 = 0x0030000000000000
KVM_REG_SIZE_U128 = 0x0040000000000000

EXIT_REASON_NAMES = {
    v: k for k, v in dict(globals()).items() if k.startswith("KVM_EXIT_") and isinstance(v, int)
}


def exit_name(reason: int) -> str:
    """``KVM_EXIT_HLT`` for 5; the number for a reason this module does not name."""
    return EXIT_REASON_NAMES.get(reason, f"exit reason {reason}")


def one_reg_size(reg_id: int) -> int:
    """Bytes of the value a ONE_REG id names (``KVM_REG_SIZE``)."""
    return 1 << ((reg_id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)
