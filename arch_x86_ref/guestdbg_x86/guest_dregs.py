"""The guest's own DR0-3, DR6 and DR7 through KVM_GET/SET_DEBUGREGS.

These are the registers the *guest* wrote (x86.c keeps them in ``vcpu->arch.db``/``dr6``/``dr7``),
not what the host debugger programs with KVM_SET_GUEST_DEBUG (``eff_db``/``guest_debug_dr7``):
the kernel keeps the two apart. ``KVM_GET/SET_DEBUGREGS`` are x86 vCPU ioctls that are not part
of :class:`guestdbg.vcpu.VcpuHandle`, so a vCPU offers them through
:class:`guestdbg.vcpu.DebugRegsHandle` (``guestdbg.kvm.device.KvmVcpu`` and the emulated host
both do), which also says what is lost without them.
"""

from __future__ import annotations

from guestdbg.errors import InvalidRequest, UnsupportedByArch
from guestdbg.vcpu import DebugRegsHandle

from . import abi

NAMES = ("dr0", "dr1", "dr2", "dr3", "dr6", "dr7")


_CT = "struct kvm_debugregs"


class GuestDebugRegs:
    """Named access to ``struct kvm_debugregs`` for one vCPU."""

    def __init__(self, vcpu: object) -> None:
        lay = abi.layout()
        self.vcpu = vcpu if isinstance(vcpu, DebugRegsHandle) else None
        self._fields = {f"dr{n}": lay.field(_CT, "db", n) for n in range(4)}
        self._fields["dr6"] = lay.field(_CT, "dr6")
        self._fields["dr7"] = lay.field(_CT, "dr7")
        self._flags = lay.field(_CT, "flags")

    @property
    def available(self) -> bool:
        return self.vcpu is not None

    def _handle(self) -> DebugRegsHandle:
        if self.vcpu is None:
            raise UnsupportedByArch("this vCPU has no KVM_GET/SET_DEBUGREGS")
        return self.vcpu

    def read(self) -> dict[str, int]:
        buf = self._handle().get_debugregs()
        return {name: f.get(buf) for name, f in self._fields.items()}

    def write(self, values: dict[str, int]) -> None:
        """Change the named registers, keep the others (read-modify-write, flags 0)."""
        unknown = set(values) - set(NAMES)
        if unknown:
            raise InvalidRequest(f"not debug registers: {sorted(unknown)}")
        handle = self._handle()
        buf = handle.get_debugregs()
        for name, value in values.items():
            self._fields[name].put(buf, value)
        self._flags.put(buf, 0)  # api.rst 4.34: must be zero
        handle.set_debugregs(bytes(buf))
