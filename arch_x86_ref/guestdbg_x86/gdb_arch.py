"""The x86-64 register set as GDB sees it, and where each register lives in KVM's API.

GDB's ``org.gnu.gdb.i386.core`` feature must hold exactly the registers of
``gdb/features/i386/64bit-core.xml`` - rax..r15, rip, eflags, the six segment selectors, st0-7
and the eight x87 control registers (fctrl..fop) - because ``i386_validate_tdesc_p`` numbers the
core registers by those names. ``org.gnu.gdb.i386.segments`` adds fs_base and gs_base
(64bit-segments.xml), and a feature of our own adds the control registers and EFER a kernel
developer wants. Two doors are used: ``kvm_regs`` (general registers, RIP, RFLAGS) and
``kvm_sregs`` (selectors, FS/GS bases, CR0-CR8, EFER). The x87 state would need KVM_GET_FPU,
which is not part of the vCPU interface, so st0-7 and fctrl..fop read as unavailable (``xx``)
and ``org.gnu.gdb.i386.sse`` is left out; GDB accepts an i386 description without it. A
selector cannot be written on its own (KVM_SET_SREGS takes the whole segment with its
descriptor cache), so such writes are refused, as are writes to the unavailable registers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guestdbg.errors import InvalidRequest
from guestdbg.gdb.target import GdbRegister
from guestdbg.kvm.uapi import ByteOrder, Field
from guestdbg.vcpu import VcpuHandle

from . import abi

CORE = "org.gnu.gdb.i386.core"
SEGMENTS = "org.gnu.gdb.i386.segments"
SYSTEM = "org.guestdbg.i386.system"

GPRS = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip
SELECTORS = ("cs", "ss", "ds", "es", "fs", "gs")
X87_CONTROL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
SYSTEM_REGS = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer")


@dataclass(frozen=True, slots=True)
class _Source:
    door: str  # "regs", "sregs", "selector", "none"
    field: Field | None = None
    mask: int = (1 << 64) - 1


def _build() -> tuple[list[GdbRegister], list[_Source]]:
    lay = abi.layout()
    regs: list[GdbRegister] = []
    src: list[_Source] = []

    def add(reg: GdbRegister, source: _Source) -> None:
        regs.append(reg)
        src.append(source)

    for name in GPRS:
        typ = "data_ptr" if name in ("rbp", "rsp") else "int64"
        add(GdbRegister(name, 64, CORE, typ), _Source("regs", lay.field("struct kvm_regs", name)))
    add(
        GdbRegister("rip", 64, CORE, "code_ptr"),
        _Source("regs", lay.field("struct kvm_regs", "rip")),
    )
    add(
        GdbRegister("eflags", 32, CORE, "int32"),
        _Source("regs", lay.field("struct kvm_regs", "rflags"), 0xFFFFFFFF),
    )
    for name in SELECTORS:
        add(
            GdbRegister(name, 32, CORE, "int32"),
            _Source("selector", lay.field("struct kvm_sregs", name, "selector")),
        )
    for n in range(8):
        add(GdbRegister(f"st{n}", 80, CORE, "i387_ext"), _Source("none"))
    for name in X87_CONTROL:
        add(GdbRegister(name, 32, CORE, "int", "float"), _Source("none"))
    for name in ("fs", "gs"):
        add(
            GdbRegister(f"{name}_base", 64, SEGMENTS, "int"),
            _Source("sregs", lay.field("struct kvm_sregs", name, "base")),
        )
    for name in SYSTEM_REGS:
        add(
            GdbRegister(name, 64, SYSTEM, "int", "system"),
            _Source("sregs", lay.field("struct kvm_sregs", name)),
        )
    return regs, src


class X86GdbArch:
    """``GdbArch`` for x86-64 guests under KVM."""

    architecture = "i386:x86-64"
    byteorder: ByteOrder = "little"
    program_breakpoint_size = 1
    registers: Sequence[GdbRegister]
    pc_regnum: int
    sp_regnum: int
    expedite: Sequence[int]

    def __init__(self) -> None:
        registers, self._sources = _build()
        self.registers = registers
        names = [r.name for r in registers]
        self.pc_regnum = names.index("rip")
        self.sp_regnum = names.index("rsp")
        self.expedite = (self.pc_regnum, self.sp_regnum, names.index("eflags"))
        self._needs_sregs = any(s.door in ("sregs", "selector") for s in self._sources)

    def is_program_breakpoint(self, code: bytes) -> bool:
        """``int3``: GDB's i386 breakpoint instruction, which ``default_program_breakpoint_here_p``
        compares memory with. GDB skips a guest's own ``int3`` under a breakpoint; the stub
        undoes that (:mod:`guestdbg.gdb.program_breakpoints`) so the guest's #BP happens."""
        return code[:1] == b"\xcc"

    def read_registers(self, vcpu: VcpuHandle) -> list[int | None]:
        rg = vcpu.get_regs()
        sr = vcpu.get_sregs() if self._needs_sregs else None
        out: list[int | None] = []
        for s in self._sources:
            if s.field is None:
                out.append(None)
            elif s.door == "regs":
                out.append(s.field.get(rg) & s.mask)
            else:
                assert sr is not None
                out.append(s.field.get(sr))
        return out

    def read_some_registers(
        self, vcpu: VcpuHandle, regnums: Sequence[int]
    ) -> Mapping[int, int | None]:
        """Just these registers, through the doors they need: general registers, RIP and
        RFLAGS cost one ``get_regs`` (the kernel's copy in ``kvm_run`` right after an exit,
        KVM_CAP_SYNC_REGS) and no KVM_GET_SREGS, which a breakpoint condition on ``rax``
        would otherwise pay at every hit (``bench/kvm_exit_overhead.py --what cond``)."""
        sources = self._sources
        count = len(sources)
        rg = sr = None
        out: dict[int, int | None] = {}
        for n in regnums:
            if not 0 <= n < count:
                continue
            s = sources[n]
            if s.field is None:
                out[n] = None
            elif s.door == "regs":
                if rg is None:
                    rg = vcpu.get_regs()
                out[n] = s.field.get(rg) & s.mask
            else:
                if sr is None:
                    sr = vcpu.get_sregs()
                out[n] = s.field.get(sr)
        return out

    def write_registers(self, vcpu: VcpuHandle, values: Mapping[int, int]) -> None:
        """Refuse the whole write if any register cannot take it, so nothing is half-applied;
        then one KVM_SET_REGS and at most one KVM_SET_SREGS."""
        for regnum in values:
            if not 0 <= regnum < len(self._sources):
                raise InvalidRequest(f"no register {regnum}")
            door = self._sources[regnum].door
            name = self.registers[regnum].name
            if door == "none":
                raise InvalidRequest(f"{name} cannot be written: it needs KVM_SET_FPU")
            if door == "selector":
                raise InvalidRequest(
                    f"{name} cannot be written alone: KVM_SET_SREGS loads a whole segment "
                    "with its descriptor"
                )
        regs_door = {n: v for n, v in values.items() if self._sources[n].door == "regs"}
        sregs_door = {n: v for n, v in values.items() if self._sources[n].door == "sregs"}
        if regs_door:
            rg = vcpu.get_regs()
            for n, v in regs_door.items():
                s = self._sources[n]
                assert s.field is not None
                keep = s.field.get(rg) & ~s.mask
                s.field.put(rg, keep | (v & s.mask))
            vcpu.set_regs(bytes(rg))
        if sregs_door:
            sr = vcpu.get_sregs()
            for n, v in sregs_door.items():
                field = self._sources[n].field
                assert field is not None
                field.put(sr, v)
            vcpu.set_sregs(bytes(sr))
