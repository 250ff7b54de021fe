"""The vCPU and VM interface guestdbg drives: ``/dev/kvm`` and the emulated hosts alike.

Everything above this interface is production code, so the interface is KVM's own: the same
ioctls, with the kernel's structures as byte buffers in the target's byte order (a PowerPC
``kvm_guest_debug`` is 264 big-endian bytes whether it goes to a real e500mc kernel or to the
emulated one). :class:`guestdbg.kvm.device.KvmVcpu` implements it with ioctls on a real
``/dev/kvm``; an arch plugin's emulated host implements it with a CPU emulator under a model of
the kernel. Methods raise :class:`~guestdbg.errors.KernelError` with the ioctl's name and the
errno the kernel would return.

Threading is a KVM vCPU fd's: ``kvm_vcpu_ioctl`` holds ``vcpu->mutex`` around every vCPU ioctl,
so a method called from another thread while ``run`` is in ``KVM_RUN`` waits until it returns
(a second ``run`` too). :meth:`~VcpuHandle.kick` is the one method that does not wait: it plays
the signal a VMM sends a vCPU thread (with ``immediate_exit`` for a thread about to enter), and
the running ``KVM_RUN`` returns ``KVM_EXIT_INTR`` before its next guest instruction, or the next
one returns it at once. :mod:`guestdbg.emuhost.vcpu` gives every emulated host these semantics.

Arch plugins and the session may use more than :class:`VcpuHandle` and :class:`VmHandle`; each
such optional interface is declared here with what is lost without it (:class:`VcpuEventsHandle`,
:class:`DebugRegsHandle`, :class:`MemorySlotsHandle`), so a VMM implementing its own handles
knows what to offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .kvm.uapi import AbiLayout


@runtime_checkable
class VcpuHandle(Protocol):
    @property
    def vcpu_id(self) -> int: ...

    @property
    def kvm_run(self) -> memoryview:
        """The shared ``kvm_run`` area (``mmap`` of the vCPU fd): header, then the exit union."""
        ...

    def run(self) -> int:
        """KVM_RUN: returns ``exit_reason`` (also in ``kvm_run``); KVM_EXIT_INTR when kicked."""
        ...

    def kick(self) -> None:
        """From any thread: make the running (or next) KVM_RUN return KVM_EXIT_INTR soon."""
        ...

    def set_guest_debug(self, dbg: bytes) -> None:
        """KVM_SET_GUEST_DEBUG with a ``struct kvm_guest_debug``."""
        ...

    def get_regs(self) -> bytearray: ...

    def set_regs(self, regs: bytes) -> None: ...

    def get_sregs(self) -> bytearray: ...

    def set_sregs(self, sregs: bytes) -> None: ...

    def get_one_reg(self, reg_id: int) -> int:
        """KVM_GET_ONE_REG; the value's width comes from the id's size field."""
        ...

    def set_one_reg(self, reg_id: int, value: int) -> None: ...

    def translate(self, gva: int) -> int | None:
        """KVM_TRANSLATE: the guest-physical address, or None when not mapped."""
        ...


@runtime_checkable
class VcpuEventsHandle(Protocol):
    """KVM_GET/SET_VCPU_EVENTS (x86, arm64): how the guest's own exceptions are handed back.

    Required by the x86 plugin, which re-injects the guest's #BP and #DB through it; a vCPU
    without it is refused when the session is set up (the guest would lose those events)."""

    def get_vcpu_events(self) -> bytearray: ...

    def set_vcpu_events(self, events: bytes) -> None: ...


@runtime_checkable
class DebugRegsHandle(Protocol):
    """KVM_GET/SET_DEBUGREGS (x86): the guest's *own* DR0-3, DR6 and DR7 (the kernel keeps them
    apart from what the host programs with KVM_SET_GUEST_DEBUG).

    Optional for the x86 plugin. Without it: the guest's own debug registers are not saved at
    attach nor restored at detach (a guest kernel using them finds them as the host debugger
    left them), and on kernels without KVM_CAP_EXCEPTION_PAYLOAD a re-injected #DB cannot carry
    its DR6 bits."""

    def get_debugregs(self) -> bytearray: ...

    def set_debugregs(self, regs: bytes) -> None: ...


@runtime_checkable
class VmHandle(Protocol):
    @property
    def layout(self) -> AbiLayout:
        """The uapi of this VM's KVM host arch (struct layouts, byte order, ioctl numbers)."""
        ...

    @property
    def vcpus(self) -> list[VcpuHandle]: ...

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION on the VM fd."""
        ...

    def enable_cap(self, cap: int, *args: int) -> None:
        """KVM_ENABLE_CAP on the VM fd."""
        ...

    def read_phys(self, gpa: int, size: int) -> bytes:
        """Guest RAM as the VMM maps it; raises BadAddress outside every memory slot."""
        ...

    def write_phys(self, gpa: int, data: bytes) -> None: ...


@dataclass(frozen=True)
class SlotInfo:
    """One KVM memory slot as ``struct kvm_userspace_memory_region`` gives it."""

    slot: int
    flags: int
    gpa: int
    size: int
    userspace_addr: int
    """Where the VMM maps the slot's memory (``read_phys``/``write_phys`` go through it)."""

    @property
    def end(self) -> int:
        return self.gpa + self.size


@runtime_checkable
class MemorySlotsHandle(Protocol):
    """The VM's memory-slot table and KVM_SET_USER_MEMORY_REGION on the VM fd.

    Optional. With it, on a kernel with ``KVM_CAP_READONLY_MEM``, the session keeps software
    breakpoints armed while the guest rewrites its code: each guest page holding a trap word
    goes into a read-only slot of its own (the VMM's mapping stays where it was), so the guest's
    stores to it leave KVM_RUN as KVM_EXIT_MMIO and the session applies them (docs/embedding.md,
    "Guest code rewrites"). Without it, an overwritten trap word is found and re-armed only
    when the guest next stops.

    Slots are changed only while every vCPU is parked. ``read_phys``/``write_phys`` keep working
    for every guest-physical address of every slot, read-only ones included (they are the VMM's
    mapping, which stays writable)."""

    def memory_slots(self) -> tuple[SlotInfo, ...]:
        """Every slot now in the VM, in guest-physical order."""
        ...

    def set_memory_slot(self, info: SlotInfo) -> None:
        """KVM_SET_USER_MEMORY_REGION as the kernel takes it: ``size`` 0 deletes the slot; a
        new slot may point anywhere into memory the VMM already mapped for guest RAM.
        Raises KernelError with the kernel's errno (EINVAL for a flag the kernel lacks, EEXIST
        for an overlap)."""
        ...
