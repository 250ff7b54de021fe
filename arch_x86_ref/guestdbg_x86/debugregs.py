"""DR6 and DR7 bit names, with the kernel's spelling (SDM vol. 3 §18.2;
docs/reference/kvm-debug-abi.md §7).

Names follow ``arch/x86/include/uapi/asm/debugreg.h`` (``DR_TRAP0``, ``DR_STEP``, ``DR_RW_*``,
``DR_LEN_*``) and ``arch/x86/include/asm/kvm_host.h`` (``DR6_*``, ``DR7_*``) so a reader can grep
both. DR6 mixes two conventions: B0-B3, BD, BS and BT are active-high, while BLD and RTM are
active-low and the reserved bits read as 1; ``DR6_ACTIVE_LOW`` is the value with nothing to
report and also the XOR mask between DR6 and the "pending debug exceptions" form KVM uses for
exit qualifications and exception payloads (``kvm_deliver_exception_payload``).
"""

from __future__ import annotations

SLOTS = 4
"""DR0-DR3."""

# DR6
DR_TRAP0 = 0x1
DR_TRAP_BITS = 0xF
"""B0-B3: which address slot matched."""
DR6_BUS_LOCK = 0x800
"""BLD, active-low."""
DR6_BD = 0x2000
"""A MOV DR found DR7.GD set (general detect)."""
DR6_BS = 0x4000
"""Single step (``DR_STEP``)."""
DR6_BT = 0x8000
"""Task switch (``DR_SWITCH``)."""
DR6_RTM = 0x10000
"""RTM, active-low."""
DR6_ACTIVE_LOW = 0xFFFF0FF0
DR6_VOLATILE = 0x0001E80F
DR6_FIXED_1 = DR6_ACTIVE_LOW & ~DR6_VOLATILE
DR6_PENDING_BIT_12 = 0x1000
"""Enabled-breakpoint bit of the pending-debug-exceptions form; reserved (zero) in DR6."""

# DR7
DR7_BP_EN_MASK = 0xFF
DR7_LE = 0x100
DR7_GE = 0x200
"""``DR_GLOBAL_SLOWDOWN``."""
DR7_FIXED_1 = 0x400
DR7_GD = 0x2000
DR_CONTROL_SHIFT = 16
DR_CONTROL_SIZE = 4
DR_ENABLE_SIZE = 2

DR_RW_EXECUTE = 0x0
DR_RW_WRITE = 0x1
DR_RW_IO = 0x2
"""I/O breakpoint (needs CR4.DE); a debugger never programs it."""
DR_RW_READ = 0x3
"""Read or write: the SDM's RW=11 ("data reads or writes but not instruction fetches")."""

LEN_CODES = {1: 0x0, 2: 0x1, 4: 0x3, 8: 0x2}
"""Bytes -> DR7 LEN field: 00 one byte, 01 two, 11 four, 10 eight (not monotonic)."""
LEN_BYTES = {code: length for length, code in LEN_CODES.items()}


def slot_enabled(dr7: int, n: int) -> bool:
    """Ln or Gn is set for slot ``n``."""
    return bool((dr7 >> (DR_ENABLE_SIZE * n)) & 0x3)


def slot_rw(dr7: int, n: int) -> int:
    return (dr7 >> (DR_CONTROL_SHIFT + DR_CONTROL_SIZE * n)) & 0x3


def slot_len(dr7: int, n: int) -> int:
    """The slot's length in bytes."""
    return LEN_BYTES[(dr7 >> (DR_CONTROL_SHIFT + DR_CONTROL_SIZE * n + 2)) & 0x3]


def dr6_to_pending(dr6: int) -> int:
    """A DR6 value as the pending-debug-exceptions / payload form (active-low bits flipped)."""
    return (dr6 ^ DR6_ACTIVE_LOW) & 0xFFFFFFFF


def apply_payload(old_dr6: int, payload: int) -> int:
    """The guest's DR6 after a #DB with ``payload`` is delivered: x86.c
    ``kvm_deliver_exception_payload`` (B0-B3 replaced, sticky bits kept, active-low bits
    cleared where the payload reports them, bit 12 dropped)."""
    dr6 = old_dr6 & ~DR_TRAP_BITS
    dr6 |= DR6_ACTIVE_LOW
    dr6 |= payload
    dr6 ^= payload & DR6_ACTIVE_LOW
    return dr6 & ~DR6_PENDING_BIT_12 & 0xFFFFFFFFFFFFFFFF
