"""What a ``/dev/kvm`` VM fd does for any arch's emulated host: guest memory, the vCPUs, and
the capability ioctls.

An arch's VM subclasses :class:`EmulatedVm` with its capabilities (``kvm_vm_ioctl_check_extension``
of its kernel), its vCPUs, and how it boots an image. ``write_phys`` is the VMM writing through
its mapping of guest RAM: every vCPU drops its translated code of the range
(:meth:`guestdbg.emuhost.vcpu.EmulatedVcpu.invalidate`). The slot table is the VMM's to
reshape (:class:`guestdbg.vcpu.MemorySlotsHandle`), over the host buffers it already has.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import KernelError
from ..kvm.uapi import AbiLayout
from ..vcpu import SlotInfo
from .memory import GuestMemory

if TYPE_CHECKING:
    from ..vcpu import VcpuHandle
    from .vcpu import EmulatedVcpu


class EmulatedVm:
    def __init__(self, layout: AbiLayout, caps: Mapping[int, int], slot_flags: int = 0) -> None:
        self.layout = layout
        """The uapi of the modelled kernel's arch (``VmHandle.layout``)."""
        self.caps = dict(caps)
        """``KVM_CHECK_EXTENSION`` answers; what is not here is 0."""
        self.memory = GuestMemory(
            "little" if layout.byteorder == "little" else "big", valid_flags=slot_flags
        )
        """The slot table; ``slot_flags`` are the memory-slot flags the modelled kernel
        accepts (:attr:`GuestMemory.valid_flags`)."""
        self.memory.on_write(self._invalidate)
        self._vcpus: Sequence[EmulatedVcpu] = ()

    def _add_vcpus(self, vcpus: Sequence[EmulatedVcpu]) -> None:
        self._vcpus = tuple(vcpus)

    # -- VmHandle -----------------------------------------------------------------------------

    @property
    def vcpus(self) -> list[VcpuHandle]:
        return list(self._vcpus)

    def check_extension(self, cap: int) -> int:
        return self.caps.get(cap, 0)

    def enable_cap(self, cap: int, *args: int) -> None:
        """``kvm_vm_ioctl_enable_cap``'s default: no VM capability can be enabled."""
        raise KernelError("KVM_ENABLE_CAP", errno.EINVAL, f"capability {cap}")

    def read_phys(self, gpa: int, size: int) -> bytes:
        return self.memory.read(gpa, size)

    def write_phys(self, gpa: int, data: bytes) -> None:
        self.memory.write(gpa, data)

    # -- MemorySlotsHandle --------------------------------------------------------------------

    def memory_slots(self) -> tuple[SlotInfo, ...]:
        return tuple(s.info() for s in self.memory.slots)

    def set_memory_slot(self, info: SlotInfo) -> None:
        """KVM_SET_USER_MEMORY_REGION on the model of ``kvm_main.c``
        (:meth:`GuestMemory.set_slot`); every vCPU's engine catches up before it next runs."""
        self.memory.set_slot(info)

    def _invalidate(self, lo: int, hi: int) -> None:
        for v in self._vcpus:
            v.invalidate(lo, hi)

    # -- whole-VM operations ------------------------------------------------------------------

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Hold every vCPU's mutex (each waits for a KVM_RUN in progress to return): the whole
        VM is still while the block runs (a snapshot, a restore, loading an image)."""
        with contextlib.ExitStack() as stack:
            for v in self._vcpus:
                stack.enter_context(v.mutex)
            yield
