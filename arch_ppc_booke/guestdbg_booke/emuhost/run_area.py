"""The e500 vCPU's ``kvm_run`` area: the exits the BookE kernel writes (big-endian, uapi offsets).

:class:`guestdbg.emuhost.run_area.RunArea` holds the page and its header; every offset comes
from ``guestdbg_booke.abi.layout()``: exit_reason at 8, the exit union at 32 (``debug.arch`` =
address u64 + status u32, ``mmio`` = phys_addr, data[8], len, is_write,
``hw.hardware_exit_reason``).
"""

from __future__ import annotations

import struct

from guestdbg.emuhost.run_area import RunArea
from guestdbg.kvm.constants import KVM_EXIT_DEBUG, KVM_EXIT_MMIO, KVM_EXIT_UNKNOWN

from .. import abi


class KvmRunArea(RunArea):
    def __init__(self) -> None:
        super().__init__(abi.layout())
        lay = self.layout
        r = "struct kvm_run"
        self._ready = lay.field(r, "ready_for_interrupt_injection")
        self._dbg_address = lay.field(r, "debug", "arch", "address")
        self._dbg_status = lay.field(r, "debug", "arch", "status")
        self._dbg_reserved = lay.field(r, "debug", "arch", "reserved")
        self._mmio_addr = lay.field(r, "mmio", "phys_addr")
        self._mmio_data = lay.offsetof(r, "mmio", "data")
        self._mmio_len = lay.field(r, "mmio", "len")
        self._mmio_is_write = lay.field(r, "mmio", "is_write")
        self._hw_reason = lay.field(r, "hw", "hardware_exit_reason")
        at = self._dbg_address.offset
        self._dbg_all: tuple[int, struct.Struct] | None = None
        """``debug.arch`` (address, status, reserved) in one pack where they are contiguous."""
        if (self._dbg_status.offset, self._dbg_reserved.offset) == (at + 8, at + 12) and (
            self._dbg_address.size,
            self._dbg_status.size,
            self._dbg_reserved.size,
        ) == (8, 4, 4):
            order = self._dbg_address.codec.format[0]  # the layout's byte order
            self._dbg_all = (at, struct.Struct(order + "QII"))

    def entering(self) -> None:
        """``kvmppc_handle_exit`` starts every exit as KVM_EXIT_UNKNOWN, ready for injection."""
        self.exit_reason = KVM_EXIT_UNKNOWN
        self._ready.put(self.buf, 1)

    def exit_debug(self, address: int, status: int) -> None:
        if self._dbg_all is not None:
            at, codec = self._dbg_all
            codec.pack_into(self.buf, at, address & 0xFFFFFFFFFFFFFFFF, status, 0)
        else:
            self._dbg_address.put(self.buf, address & 0xFFFFFFFFFFFFFFFF)
            self._dbg_status.put(self.buf, status)
            self._dbg_reserved.put(self.buf, 0)
        self.exit(KVM_EXIT_DEBUG)

    def exit_mmio(self, phys_addr: int, data: bytes, is_write: bool) -> None:
        self._mmio_addr.put(self.buf, phys_addr)
        self.buf[self._mmio_data : self._mmio_data + 8] = data.ljust(8, b"\0")
        self._mmio_len.put(self.buf, len(data))
        self._mmio_is_write.put(self.buf, int(is_write))
        self.exit(KVM_EXIT_MMIO)

    def mmio_data(self, size: int) -> bytes:
        """What the VMM left in ``mmio.data`` for a load (``kvmppc_complete_mmio_load``)."""
        return bytes(self.buf[self._mmio_data : self._mmio_data + size])

    def exit_unknown(self, hardware_exit_reason: int) -> None:
        self._hw_reason.put(self.buf, hardware_exit_reason & 0xFFFFFFFFFFFFFFFF)
        self.exit(KVM_EXIT_UNKNOWN)
