"""The vCPU and VM interface guestdbg drives: ``/dev/kvm`` and the emulated hosts alike.

Everything above this interface is production code, so the interface is KVM's own: the same
ioctls, with the kernel's structures as byte buffers in the target's byte order (a PowerPC
``kvm_guest_debug`` is 264 big-endian bytes whether it goes to a real e500mc kernel or to the
emulated one). :class:`guestdbg.kvm.device.KvmVcpu` implements it with ioctls on a real
``/dev/kvm``; an arch plugin's emulated host implements it with a CPU emulator under a model of
the kernel. Methods raise :class:`~guestdbg.errors.KernelError` with the ioctl's name and the
errno the kernel would return.

Threading: each vCPU is driven by one thread at a time (as a KVM vCPU fd is); :meth:`kick` is the
one method another thread may call, and it plays the role of the signal a VMM sends a vCPU thread
to get it out of ``KVM_RUN``.

Arch plugins may use more of a vCPU than :class:`VcpuHandle`; each such optional interface is
declared here with what is lost without it (:class:`VcpuEventsHandle`, :class:`DebugRegsHandle`),
so a VMM implementing its own handles knows what to offer.
"""

from __future__ import annotations

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
