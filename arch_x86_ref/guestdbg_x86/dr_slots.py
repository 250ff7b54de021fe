"""Host debug points into DR0-DR3 and DR7, and a DR6 hit back to the point it stands for.

The encoding is QEMU's ``kvm_arch_update_guest_debug`` (target/i386/kvm/kvm.c;
docs/reference/kvm-debug-abi.md §5.3): DR7 starts at 0x600 (GE and the reserved-one bit 10),
slot ``n`` in insertion order gets ``DRn = addr``, its global enable Gn, RW (execute 00, write 01,
read/write 11) and LEN (1 -> 00, 2 -> 01, 4 -> 11, 8 -> 10; execute breakpoints always length 1).
Checks mirror QEMU's ``kvm_arch_insert_hw_breakpoint``: a read-only watchpoint is refused (DR7 has
no read-only RW code; QEMU says ENOSYS), lengths other than 1/2/4/8 and unaligned addresses are
refused (EINVAL), a fifth point finds no slot (ENOBUFS). Everything is checked before anything is
built.

Decoding keeps the programmed image because the kernel's report cannot be trusted for it: the
kvm_pvm host reports ``dr7 = 0`` in every debug exit (docs/reference/this-machine-kvm.md), so
the RW field of the slot that fired comes from what this vCPU was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guestdbg.errors import InvalidRequest, NoFreeSlot, UnsupportedByArch
from guestdbg.points import DebugPoint, PointKind

from .debugregs import (
    DR7_FIXED_1,
    DR7_GE,
    DR_CONTROL_SHIFT,
    DR_CONTROL_SIZE,
    DR_ENABLE_SIZE,
    DR_RW_EXECUTE,
    DR_RW_READ,
    DR_RW_WRITE,
    LEN_CODES,
    SLOTS,
)

QEMU_DR7_BASE = DR7_GE | DR7_FIXED_1
"""0x600: what QEMU's DR7 holds before any slot is added."""
DR_GLOBAL_ENABLE = 0x2

_RW = {
    PointKind.HW_BREAK: DR_RW_EXECUTE,
    PointKind.WATCH_WRITE: DR_RW_WRITE,
    PointKind.WATCH_ACCESS: DR_RW_READ,
}
_WATCH_FOR_RW = {DR_RW_WRITE: PointKind.WATCH_WRITE, DR_RW_READ: PointKind.WATCH_ACCESS}


@dataclass(frozen=True, slots=True)
class SlotImage:
    """DR0-DR3 and DR7 as programmed into ``kvm_guest_debug_arch.debugreg``."""

    addrs: tuple[int, int, int, int] = (0, 0, 0, 0)
    dr7: int = 0
    points: tuple[DebugPoint | None, ...] = (None, None, None, None)

    def hit(self, dr6: int) -> tuple[int, DebugPoint] | None:
        """The lowest enabled slot whose B-bit DR6 reports, with its point."""
        for n in range(SLOTS):
            p = self.points[n]
            if p is not None and dr6 & (1 << n):
                return n, p
        return None


EMPTY = SlotImage()


def check_point(point: DebugPoint) -> None:
    """Raise as QEMU's insert does for a point DR0-3 cannot hold; changes nothing."""
    if point.kind is PointKind.WATCH_READ:
        raise UnsupportedByArch(
            f"{point}: x86 debug registers have no read-only watch (DR7 RW 10 is I/O); "
            "use an access watchpoint (awatch)"
        )
    if point.kind not in _RW:
        raise InvalidRequest(f"{point} is not a hardware point")
    if point.kind is PointKind.HW_BREAK:
        return
    if point.length not in LEN_CODES:
        raise UnsupportedByArch(f"{point}: an x86 watchpoint covers 1, 2, 4 or 8 bytes")
    if point.addr % point.length:
        raise InvalidRequest(f"{point}: the address must be aligned to the length")


def encode(points: Sequence[DebugPoint]) -> SlotImage:
    """DR0-3/DR7 for ``points`` in order; raises (building nothing) if they do not fit."""
    for p in points:
        check_point(p)
    if len(points) > SLOTS:
        raise NoFreeSlot(f"{len(points)} hardware points do not fit the {SLOTS} slots DR0-DR3")
    addrs = [0, 0, 0, 0]
    slots: list[DebugPoint | None] = [None, None, None, None]
    dr7 = QEMU_DR7_BASE if points else 0
    for n, p in enumerate(points):
        length = 1 if p.kind is PointKind.HW_BREAK else p.length
        addrs[n] = p.addr
        slots[n] = p
        dr7 |= DR_GLOBAL_ENABLE << (DR_ENABLE_SIZE * n)
        dr7 |= _RW[p.kind] << (DR_CONTROL_SHIFT + DR_CONTROL_SIZE * n)
        dr7 |= LEN_CODES[length] << (DR_CONTROL_SHIFT + DR_CONTROL_SIZE * n + 2)
    return SlotImage((addrs[0], addrs[1], addrs[2], addrs[3]), dr7, tuple(slots))


def watch_kind(rw: int) -> PointKind | None:
    """The watch kind a DR7 RW code reports, None for execute and I/O."""
    return _WATCH_FOR_RW.get(rw)
