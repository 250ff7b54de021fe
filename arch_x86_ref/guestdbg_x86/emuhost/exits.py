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
        self._mmio_addr = f(_RUN, "mmio", "phys_addr")
        self._mmio_data = [f(_RUN, "mmio", "data", n) for n in range(8)]
        self._mmio_len = f(_RUN, "mmio", "len")
        self._mmio_write = f(_RUN, "mmio", "is_write")

    def debug(self, exception: int, pc: int, dr6: int | None, dr7: int | None) -> int:
        """KVM_EXIT_DEBUG; a #BP exit leaves dr6/dr7 as they were (vmx sets them for #DB)."""
        self._exception.put(self.buf, exception)
        self._pc.put(self.buf, pc)
        if dr6 is not None:
            self._dr6.put(self.buf, dr6)
        if dr7 is not None:
            self._dr7.put(self.buf, dr7)
        return self.exit(C.KVM_EXIT_DEBUG)

    def mmio(self, gpa: int, data: bytes, is_write: bool) -> int:
        """KVM_EXIT_MMIO; the bytes of ``mmio.data`` past ``len`` stay as they were (x86.c
        ``write_exit_mmio`` copies ``len`` bytes)."""
        self._mmio_addr.put(self.buf, gpa)
        for field, byte in zip(self._mmio_data, data, strict=False):
            field.put(self.buf, byte)
        self._mmio_len.put(self.buf, len(data))
        self._mmio_write.put(self.buf, int(is_write))
        return self.exit(C.KVM_EXIT_MMIO)
