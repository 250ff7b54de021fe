"""The vCPU's ``kvm_run`` area, written as the kernel writes it.

The buffer stands for the page a VMM mmaps from the vCPU fd (``KVM_GET_VCPU_MMAP_SIZE`` is one
page here: the header and the exit union). Every offset comes from the arch's
:class:`~guestdbg.kvm.uapi.AbiLayout`, so the bytes are those of that arch's kernel (byte order
included); an arch's host subclasses this with the exits it writes (``debug.arch``, ``mmio``...).
"""

from __future__ import annotations

from ..kvm import constants as C
from ..kvm.uapi import AbiLayout

RUN_AREA_SIZE = 4096
KVM_INTERNAL_ERROR_EMULATION = 1
_RUN = "struct kvm_run"


class RunArea:
    def __init__(self, layout: AbiLayout) -> None:
        self.layout = layout
        self.buf = bytearray(RUN_AREA_SIZE)
        self.view = memoryview(self.buf)
        f = layout.field
        self._exit_reason = f(_RUN, "exit_reason")
        self._immediate_exit = f(_RUN, "immediate_exit")
        self._suberror = f(_RUN, "internal", "suberror")
        self._ndata = f(_RUN, "internal", "ndata")

    @property
    def exit_reason(self) -> int:
        return self._exit_reason.get(self.buf)

    @exit_reason.setter
    def exit_reason(self, reason: int) -> None:
        self._exit_reason.put(self.buf, reason)

    @property
    def immediate_exit(self) -> bool:
        return bool(self._immediate_exit.get(self.buf))

    @immediate_exit.setter
    def immediate_exit(self, value: bool) -> None:
        self._immediate_exit.put(self.buf, int(value))

    def exit(self, reason: int) -> int:
        """An exit with nothing but its reason; returns it (what KVM_RUN returns)."""
        self._exit_reason.put(self.buf, reason)
        return reason

    def internal_error(self) -> int:
        """KVM_EXIT_INTERNAL_ERROR, suberror EMULATION and no data (what the kernel reports for
        an instruction it cannot emulate)."""
        self._suberror.put(self.buf, KVM_INTERNAL_ERROR_EMULATION)
        self._ndata.put(self.buf, 0)
        return self.exit(C.KVM_EXIT_INTERNAL_ERROR)
