"""The KVM half of ``BookeVcpuDebug.execute_in_place``: one KVM_GET_REGS, the guest's word
through the debugger's view, :func:`.execute.execute`, one KVM_SET_REGS.

Why a separate step from the policy checks in ``debugops``: this part only knows registers, so
it can be tested against the emulated host's vCPU without a session.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from guestdbg.errors import GuestDebugError
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.vcpu import VcpuHandle

from .execute import Regs, execute

M32 = 0xFFFFFFFF
_KVM_REGS = struct.Struct(">49Q")
"""``struct kvm_regs`` as 49 ``__u64``: pc, cr, ctr, lr, xer, msr, srr0, srr1, pid, sprg0-7,
gpr[32] (``abi.CDEF``; :class:`InPlace` checks the layout agrees)."""
_PC, _CR, _CTR, _LR, _XER = range(5)
_GPR = 17


class InPlace:
    """Carries out the instruction at a vCPU's PC when :func:`.execute.execute` accepts it."""

    def __init__(self, vcpu: VcpuHandle, lay: AbiLayout) -> None:
        r = "struct kvm_regs"
        names = ("pc", "cr", "ctr", "lr", "xer")
        if (
            lay.sizeof(r) != _KVM_REGS.size
            or [lay.offsetof(r, n) for n in names] != [8 * i for i in range(5)]
            or lay.offsetof(r, "gpr") != 8 * _GPR
        ):
            raise AssertionError("struct kvm_regs is not the 49 __u64 InPlace unpacks")
        self.vcpu = vcpu

    def __call__(self, pc: int, fetch: Callable[[int, int], bytes]) -> bool:
        """True when the instruction at ``pc`` was carried out and the registers written; False
        with nothing written otherwise. Refused besides what ``execute`` refuses: a vCPU whose
        PC is not ``pc`` (the stop is stale) and registers wider than 32 bits (not a 32-bit
        core's state)."""
        values = list(_KVM_REGS.unpack(self.vcpu.get_regs()))
        if values[_PC] != pc:
            return False
        gpr = tuple(values[_GPR:])
        if max(values[_PC : _XER + 1]) > M32 or max(gpr) > M32:
            return False
        try:
            word = fetch(pc, 4)
        except GuestDebugError:
            return False
        if len(word) != 4:
            return False
        before = Regs(gpr, values[_CR], values[_XER], values[_LR], values[_CTR], pc)
        out = execute(int.from_bytes(word, "big"), before)
        if out is None:
            return False
        values[_PC : _XER + 1] = (out.pc, out.cr, out.ctr, out.lr, out.xer)
        values[_GPR:] = out.gpr
        self.vcpu.set_regs(_KVM_REGS.pack(*values))
        return True
