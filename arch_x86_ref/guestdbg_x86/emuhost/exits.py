"""Writing KVM_RUN's exits into the emulated ``kvm_run`` area, field for field as the kernel
does (``struct kvm_run`` from the x86 layout)."""

from __future__ import annotations

from guestdbg.kvm import constants as C

from .. import abi

RUN_AREA_SIZE = 4096
"""The emulated ``KVM_GET_VCPU_MMAP_SIZE``: one page holds the header and the exit union."""
KVM_INTERNAL_ERROR_EMULATION = 1
_RUN = "struct kvm_run"


class ExitWriter:
    def __init__(self) -> None:
        lay = abi.layout()
        self.area = bytearray(RUN_AREA_SIZE)
        self.view = memoryview(self.area)
        f = lay.field
        self._reason = f(_RUN, "exit_reason")
        self._immediate_exit = f(_RUN, "immediate_exit")
        self._exception = f(_RUN, "debug", "arch", "exception")
        self._pc = f(_RUN, "debug", "arch", "pc")
        self._dr6 = f(_RUN, "debug", "arch", "dr6")
        self._dr7 = f(_RUN, "debug", "arch", "dr7")
        self._suberror = f(_RUN, "internal", "suberror")
        self._ndata = f(_RUN, "internal", "ndata")

    @property
    def immediate_exit(self) -> bool:
        return bool(self._immediate_exit.get(self.area))

    def plain(self, reason: int) -> int:
        self._reason.put(self.area, reason)
        return reason

    def debug(self, exception: int, pc: int, dr6: int | None, dr7: int | None) -> int:
        """KVM_EXIT_DEBUG; a #BP exit leaves dr6/dr7 as they were (vmx sets them for #DB)."""
        self._exception.put(self.area, exception)
        self._pc.put(self.area, pc)
        if dr6 is not None:
            self._dr6.put(self.area, dr6)
        if dr7 is not None:
            self._dr7.put(self.area, dr7)
        return self.plain(C.KVM_EXIT_DEBUG)

    def internal_error(self) -> int:
        self._suberror.put(self.area, KVM_INTERNAL_ERROR_EMULATION)
        self._ndata.put(self.area, 0)
        return self.plain(C.KVM_EXIT_INTERNAL_ERROR)
