"""The toy register set as GDB sees it: every register comes from ``kvm_regs``.

GDB knows no toy architecture, so the description's ``<architecture>`` is only a name and a
real GDB would refuse it; the stub, the ``g`` packet and the description are still exercised.
Register 7 (``sp``) is the stack pointer by the toy's calling convention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from guestdbg.errors import InvalidRequest
from guestdbg.gdb.target import GdbRegister
from guestdbg.kvm.uapi import ByteOrder, Field
from guestdbg.vcpu import VcpuHandle

from . import abi

FEATURE = "org.guestdbg.toy.core"
NAMES = ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "sp", "pc", "sr", "epc", "esr", "cause", "vbar")


class ToyGdbArch:
    architecture = "toy"
    byteorder: ByteOrder = "big"
    registers: Sequence[GdbRegister]
    pc_regnum = NAMES.index("pc")
    sp_regnum = NAMES.index("sp")
    expedite: Sequence[int] = (pc_regnum, sp_regnum, NAMES.index("sr"))

    def __init__(self) -> None:
        lay = abi.layout()
        regs = "struct kvm_regs"
        self._fields: list[Field] = [lay.field(regs, "gpr", n) for n in range(8)]
        self._fields += [lay.field(regs, n) for n in ("pc", "sr", "epc", "esr", "cause", "vbar")]
        types = {"sp": "data_ptr", "pc": "code_ptr", "epc": "code_ptr", "vbar": "code_ptr"}
        self.registers = [GdbRegister(n, 32, FEATURE, types.get(n, "uint32")) for n in NAMES]

    def read_registers(self, vcpu: VcpuHandle) -> list[int | None]:
        buf = vcpu.get_regs()
        return [f.get(buf) for f in self._fields]

    def write_registers(self, vcpu: VcpuHandle, values: Mapping[int, int]) -> None:
        """All or nothing, one KVM_SET_REGS (a write to r0 is accepted and lost, as on the CPU)."""
        for regnum, value in values.items():
            if not 0 <= regnum < len(self._fields):
                raise InvalidRequest(f"no toy register {regnum}")
            if not 0 <= value < 1 << 32:
                raise InvalidRequest(f"{NAMES[regnum]} is 32 bits; {value:#x} does not fit")
        buf = vcpu.get_regs()
        for regnum, value in values.items():
            self._fields[regnum].put(buf, value)
        vcpu.set_regs(bytes(buf))
