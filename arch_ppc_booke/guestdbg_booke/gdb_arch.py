"""The e500mc register set as GDB sees it, and where each register lives in KVM's API.

GDB's ``org.gnu.gdb.power.core`` and ``org.gnu.gdb.power.fpu`` features (rs6000-tdep.c checks
their register names), then the BookE SPRs a kernel developer needs in a feature of our own.
KVM BookE exposes them through three doors: ``kvm_regs`` (GPRs, PC, MSR, CR, LR, CTR, XER,
SRR0/1, PID, SPRG0-7), ``kvm_sregs`` (CSRR0/1, ESR, DEAR, IVPR) and ONE_REG (IAC1/2, DAC1/2,
FPR0-31, FPSCR). DSRR0/1, DBCR0-2 and DBSR have no door at all
(docs/reference/kvm-guest-debug-abi.md §2.3-2.4: E_DEBUG/E_ED are not filled by booke.c), so
they read as unavailable (``xx``) rather than as a
made-up value. FP registers come through ONE_REG; a kernel that refuses them (``KVM_GET_FPU`` is
-EOPNOTSUPP on BookE) makes them unavailable too.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guestdbg.errors import GuestDebugError, InvalidRequest
from guestdbg.gdb.target import GdbRegister
from guestdbg.kvm.uapi import ByteOrder, Field
from guestdbg.vcpu import VcpuHandle

from . import abi

CORE = "org.gnu.gdb.power.core"
FPU = "org.gnu.gdb.power.fpu"
BOOKE = "org.guestdbg.power.booke"

KVM_REG_PPC_FPR0 = 0x1030000000000020
KVM_REG_PPC_FPSCR = 0x1030000000000080


@dataclass(frozen=True)
class _Source:
    door: str  # "regs", "sregs", "one_reg", "none"
    key: object
    group: int = 0  # kvm_sregs feature group for writes


def _build(fpu: bool) -> tuple[list[GdbRegister], list[_Source]]:
    regs: list[GdbRegister] = []
    src: list[_Source] = []

    def add(reg: GdbRegister, source: _Source) -> None:
        regs.append(reg)
        src.append(source)

    for n in range(32):
        add(GdbRegister(f"r{n}", 32, CORE, "uint32", "general"), _Source("regs", ("gpr", n)))
    add(GdbRegister("pc", 32, CORE, "code_ptr", "general"), _Source("regs", "pc"))
    add(GdbRegister("msr", 32, CORE, "uint32", "general"), _Source("regs", "msr"))
    add(GdbRegister("cr", 32, CORE, "uint32", "general"), _Source("regs", "cr"))
    add(GdbRegister("lr", 32, CORE, "code_ptr", "general"), _Source("regs", "lr"))
    add(GdbRegister("ctr", 32, CORE, "uint32", "general"), _Source("regs", "ctr"))
    add(GdbRegister("xer", 32, CORE, "uint32", "general"), _Source("regs", "xer"))
    for n in range(32 if fpu else 0):
        add(
            GdbRegister(f"f{n}", 64, FPU, "ieee_double", "float"),
            _Source("one_reg", KVM_REG_PPC_FPR0 + n),
        )
    if fpu:
        add(GdbRegister("fpscr", 32, FPU, "int", "float"), _Source("one_reg", KVM_REG_PPC_FPSCR))
    e = abi
    spr = [
        ("srr0", _Source("regs", "srr0")),
        ("srr1", _Source("regs", "srr1")),
        ("csrr0", _Source("sregs", "csrr0", e.KVM_SREGS_E_BASE)),
        ("csrr1", _Source("sregs", "csrr1", e.KVM_SREGS_E_BASE)),
        ("dsrr0", _Source("none", None)),
        ("dsrr1", _Source("none", None)),
        ("esr", _Source("sregs", "esr", e.KVM_SREGS_E_BASE)),
        ("dear", _Source("sregs", "dear", e.KVM_SREGS_E_BASE)),
        ("ivpr", _Source("sregs", "ivpr", e.KVM_SREGS_E_ARCH206)),
        ("dbcr0", _Source("none", None)),
        ("dbcr1", _Source("none", None)),
        ("dbcr2", _Source("none", None)),
        ("dbsr", _Source("none", None)),
        ("iac1", _Source("one_reg", e.KVM_REG_PPC_IAC1)),
        ("iac2", _Source("one_reg", e.KVM_REG_PPC_IAC2)),
        ("dac1", _Source("one_reg", e.KVM_REG_PPC_DAC1)),
        ("dac2", _Source("one_reg", e.KVM_REG_PPC_DAC2)),
        ("pid", _Source("regs", "pid")),
    ] + [(f"sprg{n}", _Source("regs", f"sprg{n}")) for n in range(8)]
    for name, source in spr:
        add(GdbRegister(name, 32, BOOKE, "uint32", "system"), source)
    return regs, src


_TRAP_FORMS = (
    (0xFC0007FE, 0x7C000008),  # tw
    (0xFC0007FE, 0x7C000088),  # td
    (0xFC000000, 0x0C000000),  # twi
    (0xFC000000, 0x08000000),  # tdi
)
"""(mask, value) of the instructions GDB takes for the program's own breakpoint on PowerPC
(rs6000-tdep.c, ``rs6000_program_breakpoint_here_p``): every trap, whatever its condition."""


class BookeGdbArch:
    """``GdbArch`` for e500mc/e500v2 guests under KVM BookE."""

    byteorder: ByteOrder = "big"
    program_breakpoint_size = 4
    architecture: str
    registers: Sequence[GdbRegister]
    pc_regnum: int
    sp_regnum: int
    expedite: Sequence[int]

    def __init__(self, architecture: str = "powerpc:e500mc", fpu: bool = True) -> None:
        self.architecture = architecture
        registers, self._sources = _build(fpu)
        self.registers = registers
        names = [r.name for r in registers]
        self.pc_regnum = names.index("pc")
        self.sp_regnum = names.index("r1")
        # LR too: with it GDB's frame unwinder needs no ``g`` after a stop (measured: 1 ``g``
        # instead of 3 in a short session)
        self.expedite = (self.pc_regnum, self.sp_regnum, names.index("msr"), names.index("lr"))
        lay = abi.layout()
        self._regs_fields: dict[object, Field] = {}
        for n in range(32):
            self._regs_fields[("gpr", n)] = lay.field("struct kvm_regs", "gpr", n)
        names_in_regs = ("pc", "msr", "cr", "lr", "ctr", "xer", "srr0", "srr1", "pid")
        for name in (*names_in_regs, *(f"sprg{n}" for n in range(8))):
            self._regs_fields[name] = lay.field("struct kvm_regs", name)
        self._sregs_fields = {
            name: lay.field("struct kvm_sregs", "u", "e", name)
            for name in ("csrr0", "csrr1", "esr", "dear", "ivpr", "features", "update_special")
        }
        # A read plan: which registers come from which door, precomputed once.
        self._kvm_regs = struct.Struct(">49Q")  # kvm_regs is 49 consecutive __u64
        regs_index = {
            key: (lay.offsetof("struct kvm_regs", *self._regs_path(key))) // 8
            for key in self._regs_fields
        }
        self._plan = self._sources
        self._from_regs = [
            (n, regs_index[src.key]) for n, src in enumerate(self._sources) if src.door == "regs"
        ]
        self._from_sregs = [
            (n, self._sregs_fields[str(src.key)])
            for n, src in enumerate(self._sources)
            if src.door == "sregs"
        ]
        self._from_one_reg = [
            (n, int(str(src.key)) if not isinstance(src.key, int) else src.key)
            for n, src in enumerate(self._sources)
            if src.door == "one_reg"
        ]
        self._fp_ids = frozenset([KVM_REG_PPC_FPSCR, *(KVM_REG_PPC_FPR0 + i for i in range(32))])
        self._refused: dict[int, set[int]] = {}

    def is_program_breakpoint(self, code: bytes) -> bool:
        """GDB skips these instead of executing them when a breakpoint sits on one; the stub
        undoes that (:mod:`guestdbg.gdb.program_breakpoints`) so the guest's trap happens."""
        word = int.from_bytes(code[:4], "big")
        return any(word & mask == value for mask, value in _TRAP_FORMS)

    def read_registers(self, vcpu: VcpuHandle) -> list[int | None]:
        """One KVM_GET_REGS (unpacked at once), one KVM_GET_SREGS, and ONE_REG for the rest;
        registers a kernel refused once (BookE has no FPR ONE_REG) are not asked again."""
        plan = self._plan
        out: list[int | None] = [None] * len(plan)
        regs = self._kvm_regs.unpack_from(vcpu.get_regs(), 0)
        for n, index in self._from_regs:
            out[n] = regs[index]
        if self._from_sregs:
            sr = vcpu.get_sregs()
            for n, fld in self._from_sregs:
                out[n] = fld.get(sr)
        refused = self._refused.setdefault(id(vcpu), set())
        for n, reg_id in self._from_one_reg:
            if reg_id in refused:
                continue
            try:
                out[n] = vcpu.get_one_reg(reg_id)
            except GuestDebugError:
                refused.add(reg_id)
                if reg_id in self._fp_ids:
                    refused.update(self._fp_ids)  # no FPU through this kernel: skip them all
        return out

    @staticmethod
    def _regs_path(key: object) -> tuple[str | int, ...]:
        return ("gpr", key[1]) if isinstance(key, tuple) else (str(key),)

    def read_some_registers(
        self, vcpu: VcpuHandle, regnums: Sequence[int]
    ) -> Mapping[int, int | None]:
        """Just these registers, through the doors they need: PC, SP, MSR and LR (what every
        stop reply carries) cost one KVM_GET_REGS instead of a read through every door, on
        every stop (``bench/vs_qemu.py`` times both calls in its breakdown of a hit)."""
        doors = {self._sources[n].door for n in regnums if 0 <= n < len(self._sources)}
        if doors - {"regs", "none"}:
            full = self.read_registers(vcpu)
            return {n: full[n] for n in regnums if 0 <= n < len(full)}
        rg = vcpu.get_regs() if "regs" in doors else None
        out: dict[int, int | None] = {}
        for n in regnums:
            if not 0 <= n < len(self._sources):
                continue
            source = self._sources[n]
            out[n] = (
                self._regs_fields[source.key].get(rg)
                if rg is not None and (source.door == "regs")
                else None
            )
        return out

    def write_registers(self, vcpu: VcpuHandle, values: Mapping[int, int]) -> None:
        """Write in three batches (regs, sregs, ONE_REG); refuse the whole write if any
        register has no door, so nothing is half-applied."""
        for regnum in values:
            if not 0 <= regnum < len(self._sources):
                raise InvalidRequest(f"no register {regnum}")
            if self._sources[regnum].door == "none":
                raise InvalidRequest(
                    f"{self.registers[regnum].name} cannot be written: KVM BookE has no "
                    "interface for it"
                )
        by_door: dict[str, list[tuple[_Source, int]]] = {}
        for regnum, value in values.items():
            source = self._sources[regnum]
            by_door.setdefault(source.door, []).append((source, value))
        if "regs" in by_door:
            rg = vcpu.get_regs()
            for source, value in by_door["regs"]:
                self._regs_fields[source.key].put(rg, value & 0xFFFFFFFF)
            vcpu.set_regs(bytes(rg))
        if "sregs" in by_door:
            sr = vcpu.get_sregs()
            groups = 0
            for source, value in by_door["sregs"]:
                self._sregs_fields[str(source.key)].put(sr, value & 0xFFFFFFFF)
                groups |= source.group
            self._sregs_fields["features"].put(sr, groups)
            self._sregs_fields["update_special"].put(sr, 0)
            vcpu.set_sregs(bytes(sr))
        for source, value in by_door.get("one_reg", []):
            assert isinstance(source.key, int)
            vcpu.set_one_reg(source.key, value)


def gdb_arch_for(core: str) -> BookeGdbArch:
    """e500mc has a classic FPU; e500v2 has SPE instead, whose registers KVM does not expose
    through ONE_REG in a form GDB's e500 layout wants, so its description stays integer-only."""
    if core == "e500mc":
        return BookeGdbArch("powerpc:e500mc", fpu=True)
    return BookeGdbArch("powerpc:common", fpu=False)
