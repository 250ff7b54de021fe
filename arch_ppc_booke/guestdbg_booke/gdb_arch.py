"""The BookE register sets as GDB sees them, per core, and where each register lives in KVM's API.

GDB's ``org.gnu.gdb.power.core``, ``org.gnu.gdb.power.fpu`` and ``org.gnu.gdb.power.altivec``
features (rs6000-tdep.c checks their register names), then the BookE SPRs a kernel developer
needs in a feature of our own. KVM BookE exposes them through three doors: ``kvm_regs`` (GPRs,
PC, MSR, CR, LR, CTR, XER, SRR0/1, PID, SPRG0-7), ``kvm_sregs`` (CSRR0/1, ESR, DEAR, IVPR) and
ONE_REG (IAC1/2, DAC1/2, FPR0-31, FPSCR, VR0-31, VSCR, VRSAVE). DSRR0/1, DBCR0-2 and DBSR have
no door at all (docs/reference/kvm-debug-abi.md §2.3-2.4: E_DEBUG/E_ED are not filled by
booke.c), so they read as unavailable (``xx``) rather than as a made-up value. FP and AltiVec
registers come through ONE_REG; a kernel that refuses them (``KVM_GET_FPU`` is -EOPNOTSUPP on
BookE; VR0-31 are -ENXIO on a host without AltiVec) makes them unavailable too.

Per core (:func:`gdb_arch_for`): e500mc is 32-bit with an FPU (``powerpc:e500mc``); e5500 is
64-bit with an FPU (``powerpc:e5500``, GDB's 64-bit core layout ``power64-core.xml``: GPRs, PC,
MSR, LR and CTR 64 bits, CR and XER 32); e6500 adds AltiVec (``powerpc:e6500``, the layout of
``power-altivec.xml``); e500v2 has SPE instead of an FPU and stays integer-only. gdb-multiarch
13.1 refuses ``set architecture`` for e500mc, e5500 and e6500 but takes each from the
description's ``<architecture>`` (docs/reference/kvm-debug-abi.md §9.5, checked by
``tests/gdb/test_gdb_arch64.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guestdbg.arch import CoreInfo
from guestdbg.errors import GuestDebugError, InvalidRequest
from guestdbg.gdb.target import GdbRegister, GdbType, GdbUnion, GdbVector
from guestdbg.kvm.uapi import ByteOrder, Field
from guestdbg.vcpu import VcpuHandle

from . import abi

CORE = "org.gnu.gdb.power.core"
FPU = "org.gnu.gdb.power.fpu"
ALTIVEC = "org.gnu.gdb.power.altivec"
BOOKE = "org.guestdbg.power.booke"

KVM_REG_PPC_FPR0 = abi.KVM_REG_PPC_FPR0
KVM_REG_PPC_FPSCR = abi.KVM_REG_PPC_FPSCR

ALTIVEC_TYPES: tuple[GdbType, ...] = (
    GdbVector("v4f", "ieee_single", 4),
    GdbVector("v4i32", "int32", 4),
    GdbVector("v8i16", "int16", 8),
    GdbVector("v16i8", "int8", 16),
    GdbUnion(
        "vec128",
        (
            ("uint128", "uint128"),
            ("v4_float", "v4f"),
            ("v4_int32", "v4i32"),
            ("v8_int16", "v8i16"),
            ("v16_int8", "v16i8"),
        ),
    ),
)
"""The ``vec128`` type as GDB's own ``power-altivec.xml`` defines it, so a ``vr`` register
prints with the same views (``p $vr0.v4_int32``) as on any PowerPC target."""


@dataclass(frozen=True)
class CoreLayout:
    """What a core shows GDB: its BFD architecture name, width and register files."""

    architecture: str
    bits: int
    fpu: bool
    altivec: bool = False


LAYOUTS = {
    "e500mc": CoreLayout("powerpc:e500mc", 32, fpu=True),
    "e5500": CoreLayout("powerpc:e5500", 64, fpu=True),
    "e6500": CoreLayout("powerpc:e6500", 64, fpu=True, altivec=True),
    "e500v2": CoreLayout("powerpc:common", 32, fpu=False),
}
"""e500v2 has SPE instead of a classic FPU, whose registers KVM does not expose through ONE_REG
in a form GDB's e500 layout wants, so its description stays integer-only."""


@dataclass(frozen=True)
class _Source:
    door: str  # "regs", "sregs", "one_reg", "none"
    key: object
    group: int = 0  # kvm_sregs feature group for writes


def _build(layout: CoreLayout) -> tuple[list[GdbRegister], list[_Source]]:
    regs: list[GdbRegister] = []
    src: list[_Source] = []
    w = layout.bits
    word = f"uint{w}"

    def add(reg: GdbRegister, source: _Source) -> None:
        regs.append(reg)
        src.append(source)

    for n in range(32):
        add(GdbRegister(f"r{n}", w, CORE, word, "general"), _Source("regs", ("gpr", n)))
    add(GdbRegister("pc", w, CORE, "code_ptr", "general"), _Source("regs", "pc"))
    add(GdbRegister("msr", w, CORE, word, "general"), _Source("regs", "msr"))
    add(GdbRegister("cr", 32, CORE, "uint32", "general"), _Source("regs", "cr"))
    add(GdbRegister("lr", w, CORE, "code_ptr", "general"), _Source("regs", "lr"))
    add(GdbRegister("ctr", w, CORE, word, "general"), _Source("regs", "ctr"))
    add(GdbRegister("xer", 32, CORE, "uint32", "general"), _Source("regs", "xer"))
    for n in range(32 if layout.fpu else 0):
        add(
            GdbRegister(f"f{n}", 64, FPU, "ieee_double", "float"),
            _Source("one_reg", KVM_REG_PPC_FPR0 + n),
        )
    if layout.fpu:
        add(GdbRegister("fpscr", 32, FPU, "int", "float"), _Source("one_reg", KVM_REG_PPC_FPSCR))
    for n in range(32 if layout.altivec else 0):
        add(
            GdbRegister(f"vr{n}", 128, ALTIVEC, "vec128", "vector"),
            _Source("one_reg", abi.KVM_REG_PPC_VR0 + n),
        )
    if layout.altivec:
        vscr = _Source("one_reg", abi.KVM_REG_PPC_VSCR)
        add(GdbRegister("vscr", 32, ALTIVEC, "int", "vector"), vscr)
        vrsave = _Source("one_reg", abi.KVM_REG_PPC_VRSAVE)
        add(GdbRegister("vrsave", 32, ALTIVEC, "int", "vector"), vrsave)
    e = abi
    # (name, source, 64-bit on a 64-bit core): addresses and the save/restore registers of the
    # MSR are as wide as the core; syndrome, control and status registers stay 32 bits.
    spr = [
        ("srr0", _Source("regs", "srr0"), True),
        ("srr1", _Source("regs", "srr1"), True),
        ("csrr0", _Source("sregs", "csrr0", e.KVM_SREGS_E_BASE), True),
        ("csrr1", _Source("sregs", "csrr1", e.KVM_SREGS_E_BASE), True),
        ("dsrr0", _Source("none", None), True),
        ("dsrr1", _Source("none", None), True),
        ("esr", _Source("sregs", "esr", e.KVM_SREGS_E_BASE), False),
        ("dear", _Source("sregs", "dear", e.KVM_SREGS_E_BASE), True),
        ("ivpr", _Source("sregs", "ivpr", e.KVM_SREGS_E_ARCH206), True),
        ("dbcr0", _Source("none", None), False),
        ("dbcr1", _Source("none", None), False),
        ("dbcr2", _Source("none", None), False),
        ("dbsr", _Source("none", None), False),
        ("iac1", _Source("one_reg", e.KVM_REG_PPC_IAC1), True),
        ("iac2", _Source("one_reg", e.KVM_REG_PPC_IAC2), True),
        ("dac1", _Source("one_reg", e.KVM_REG_PPC_DAC1), True),
        ("dac2", _Source("one_reg", e.KVM_REG_PPC_DAC2), True),
        ("pid", _Source("regs", "pid"), False),
    ] + [(f"sprg{n}", _Source("regs", f"sprg{n}"), True) for n in range(8)]
    for name, source, wide in spr:
        bits = w if wide else 32
        add(GdbRegister(name, bits, BOOKE, f"uint{bits}", "system"), source)
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
    """``GdbArch`` for BookE guests under KVM (one :class:`CoreLayout`)."""

    byteorder: ByteOrder = "big"
    program_breakpoint_size = 4
    architecture: str
    registers: Sequence[GdbRegister]
    pc_regnum: int
    sp_regnum: int
    expedite: Sequence[int]

    def __init__(self, layout: CoreLayout = LAYOUTS["e500mc"]) -> None:
        self.layout = layout
        self.architecture = layout.architecture
        self.types: Mapping[str, Sequence[GdbType]] = (
            {ALTIVEC: ALTIVEC_TYPES} if layout.altivec else {}
        )
        registers, self._sources = _build(layout)
        self.registers = registers
        self._masks = [(1 << r.bitsize) - 1 for r in registers]
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
        fp_ids = frozenset([KVM_REG_PPC_FPSCR, *(KVM_REG_PPC_FPR0 + i for i in range(32))])
        vr_ids = frozenset([abi.KVM_REG_PPC_VSCR, *(abi.KVM_REG_PPC_VR0 + i for i in range(32))])
        self._families = {reg_id: ids for ids in (fp_ids, vr_ids) for reg_id in ids}
        """A register file the kernel has or lacks as a whole: one refusal stands for all of
        it (powerpc.c answers every VR and VSCR with -ENXIO on a host without AltiVec). VRSAVE
        is not in it: booke.c answers it on every core."""
        self._refused: dict[int, set[int]] = {}
        self._some_plans: dict[tuple[int, ...], tuple[tuple[int, int | None], ...]] = {}
        """``read_some_registers`` plans by register numbers asked (the stub asks the same)."""

    def is_program_breakpoint(self, code: bytes) -> bool:
        """GDB skips these instead of executing them when a breakpoint sits on one; the stub
        undoes that (:mod:`guestdbg.gdb.program_breakpoints`) so the guest's trap happens."""
        word = int.from_bytes(code[:4], "big")
        return any(word & mask == value for mask, value in _TRAP_FORMS)

    def read_registers(self, vcpu: VcpuHandle) -> list[int | None]:
        """One KVM_GET_REGS (unpacked at once), one KVM_GET_SREGS, and ONE_REG for the rest;
        registers a kernel refused once (BookE has no FPR ONE_REG; a host without AltiVec no
        VR) are not asked again."""
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
                refused.update(self._families.get(reg_id, ()))
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
        key = tuple(regnums)
        in_regs = self._some_plans.get(key)
        if in_regs is None:
            in_regs = self._some_plan(key)
        if in_regs:
            # all from kvm_regs (the expedited registers): one KVM_GET_REGS, one unpack
            values = self._kvm_regs.unpack_from(vcpu.get_regs(), 0)
            return {n: None if index is None else values[index] for n, index in in_regs}
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

    def _some_plan(self, regnums: tuple[int, ...]) -> tuple[tuple[int, int | None], ...]:
        """(regnum, index in the unpacked kvm_regs or None) for each register of ``regnums``
        that exists, if at least one comes from kvm_regs and the others from no door; else
        empty (the general path). Kept per tuple of register numbers."""
        out: list[tuple[int, int | None]] = []
        from_regs = dict(self._from_regs)
        for n in regnums:
            if not 0 <= n < len(self._sources):
                continue
            door = self._sources[n].door
            if door == "regs":
                out.append((n, from_regs[n]))
            elif door == "none":
                out.append((n, None))
            else:
                out = []
                break
        plan = tuple(out) if any(index is not None for _, index in out) else ()
        if len(self._some_plans) < 64:
            self._some_plans[regnums] = plan
        return plan

    def write_registers(self, vcpu: VcpuHandle, values: Mapping[int, int]) -> None:
        """Write in three batches (regs, sregs, ONE_REG); refuse the whole write if any
        register has no door or a value wider than the register, so nothing is half-applied.
        A value is stored as wide as the register is (64 bits on e5500/e6500), never cut to
        32."""
        for regnum in values:
            if not 0 <= regnum < len(self._sources):
                raise InvalidRequest(f"no register {regnum}")
            if self._sources[regnum].door == "none":
                raise InvalidRequest(
                    f"{self.registers[regnum].name} cannot be written: KVM BookE has no "
                    "interface for it"
                )
            value = values[regnum]
            if not 0 <= value <= self._masks[regnum]:
                reg = self.registers[regnum]
                raise InvalidRequest(
                    f"{value:#x} does not fit the {reg.bitsize}-bit register {reg.name}"
                )
        by_door: dict[str, list[tuple[_Source, int]]] = {}
        for regnum, value in values.items():
            source = self._sources[regnum]
            by_door.setdefault(source.door, []).append((source, value))
        if "regs" in by_door:
            rg = vcpu.get_regs()
            for source, value in by_door["regs"]:
                self._regs_fields[source.key].put(rg, value)
            vcpu.set_regs(bytes(rg))
        if "sregs" in by_door:
            sr = vcpu.get_sregs()
            groups = 0
            for source, value in by_door["sregs"]:
                fld = self._sregs_fields[str(source.key)]
                fld.put(sr, value & ((1 << 8 * fld.size) - 1))  # csrr1 is a __u32 in kvm_sregs
                groups |= source.group
            self._sregs_fields["features"].put(sr, groups)
            self._sregs_fields["update_special"].put(sr, 0)
            vcpu.set_sregs(bytes(sr))
        for source, value in by_door.get("one_reg", []):
            assert isinstance(source.key, int)
            vcpu.set_one_reg(source.key, value)


def gdb_arch_for(core: CoreInfo | str) -> BookeGdbArch:
    """The description of ``core`` (a :class:`CoreInfo` or a core name); a core the plugin
    does not know gets the integer-only 32-bit layout, as e500v2 does, unless it says it is
    64-bit."""
    name = core if isinstance(core, str) else core.name
    layout = LAYOUTS.get(name)
    if layout is None:
        bits = 32 if isinstance(core, str) else core.register_bits
        layout = CoreLayout("powerpc:common64" if bits == 64 else "powerpc:common", bits, False)
    return BookeGdbArch(layout)
