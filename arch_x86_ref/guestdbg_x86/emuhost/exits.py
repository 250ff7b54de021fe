"""The x86 vCPU's ``kvm_run`` area: the exits KVM x86 writes, field for field (``struct
kvm_run`` from the x86 layout; the page and its header are
:class:`guestdbg.emuhost.run_area.RunArea`)."""

from __future__ import annotations

from guestdbg.emuhost.run_area import RunArea
from guestdbg.kvm import constants as C

from .. import abi

_RUN = "struct kvm_run"


class ExitWriter(RunArea):
    def __init__(self) -> None:
        super().__init__(abi.layout())
        f = self.layout.field
        self._exception = f(_RUN, "debug", "arch", "exception")
        self._pc = f(_RUN, "debug", "arch", "pc")
        self._dr6 = f(_RUN, "debug", "arch", "dr6")
        self._dr7 = f(_RUN, "debug", "arch", "dr7")

    def debug(self, exception: int, pc: int, dr6: int | None, dr7: int | None) -> int:
        """KVM_EXIT_DEBUG; a #BP exit leaves dr6/dr7 as they were (vmx sets them for #DB)."""
        self._exception.put(self.buf, exception)
        self._pc.put(self.buf, pc)
        if dr6 is not None:
            self._dr6.put(self.buf, dr6)
        if dr7 is not None:
            self._dr7.put(self.buf, dr7)
        return self.exit(C.KVM_EXIT_DEBUG)
