"""One scenario of read-only memory slots on ``long_mode.S``, run the same way on any x86 VM
that offers :class:`guestdbg.vcpu.MemorySlotsHandle` (this machine's ``/dev/kvm`` in
``tests/test_real_kvm.py``, the emulated host in ``tests/x86/test_read_only_slots.py``), so the
two can be compared field for field.

The VM starts with one RAM slot over ``[0, RAM_SIZE)`` holding the loaded image. The scenario
reshapes it through ``set_memory_slot`` alone, as a session would: delete the slot, then
re-create it as three slots over the same host memory, the page holding ``store_rbx`` in a
read-only slot of its own (docs/reference/kvm-debug-abi.md §11.2). Then the guest runs
``store_rbx`` (one 8-byte store of RAX to [RBX]) or ``load_rbx`` until it halts, and every exit
is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from guestdbg.kvm import constants as C
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.vcpu import MemorySlotsHandle, SlotInfo, VcpuHandle, VmHandle

from . import long_mode

PAGE = 0x1000
VALUE = 0x1122334455667788
MAX_EXITS = 4


def split_read_only(vm: MemorySlotsHandle, page: int) -> tuple[SlotInfo, ...]:
    """Delete the one RAM slot and re-create it as [0, page), [page, +4 KiB) read-only and the
    rest, over the same host memory; the new slot table."""
    (ram,) = vm.memory_slots()
    vm.set_memory_slot(SlotInfo(ram.slot, ram.flags, ram.gpa, 0, ram.userspace_addr))
    host = ram.userspace_addr
    vm.set_memory_slot(SlotInfo(0, 0, 0, page, host))
    vm.set_memory_slot(SlotInfo(1, C.KVM_MEM_READONLY, page, PAGE, host + page))
    rest = ram.size - page - PAGE
    vm.set_memory_slot(SlotInfo(2, 0, page + PAGE, rest, host + page + PAGE))
    return vm.memory_slots()


@dataclass(frozen=True)
class Exit:
    reason: int
    rip: int
    mmio: tuple[int, int, int, bytes] | None = None
    """(phys_addr, len, is_write, data[:len]) of a KVM_EXIT_MMIO."""


@dataclass(frozen=True)
class Outcome:
    exits: tuple[Exit, ...]
    rax: int
    memory: bytes
    """Guest memory around RBX after the last exit (16 bytes from RBX - 8)."""


def _mmio(layout: AbiLayout, run_area: memoryview, *path: str | int) -> int:
    return layout.field("struct kvm_run", "mmio", *path).get(run_area)


def run(
    vm: VmHandle, vcpu: VcpuHandle, layout: AbiLayout, sym: dict[str, int], entry: str, rbx: int
) -> Outcome:
    """Run from ``entry`` with RAX = VALUE and RBX = ``rbx`` until ``hlt`` (at most MAX_EXITS
    exits); the caller bounds each KVM_RUN."""
    long_mode.start_at(vcpu, layout, sym, entry)  # type: ignore[arg-type]
    regs = vcpu.get_regs()
    layout.field("struct kvm_regs", "rax").put(regs, VALUE)
    layout.field("struct kvm_regs", "rbx").put(regs, rbx)
    vcpu.set_regs(bytes(regs))
    exits = []
    for _ in range(MAX_EXITS):
        reason = vcpu.run()
        run_area = vcpu.kvm_run
        regs = vcpu.get_regs()
        rip = layout.field("struct kvm_regs", "rip").get(regs)
        mmio = None
        if reason == C.KVM_EXIT_MMIO:
            n = _mmio(layout, run_area, "len")
            data = bytes(_mmio(layout, run_area, "data", i) for i in range(min(n, 8)))
            mmio = (
                _mmio(layout, run_area, "phys_addr"),
                n,
                _mmio(layout, run_area, "is_write"),
                data,
            )
        exits.append(Exit(reason, rip, mmio))
        if reason != C.KVM_EXIT_MMIO:
            break
    rax = layout.field("struct kvm_regs", "rax").get(vcpu.get_regs())
    return Outcome(tuple(exits), rax, vm.read_phys(rbx - 8, 16))
