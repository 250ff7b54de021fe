"""The x86-64 GDB register layout: a target description real gdb-multiarch accepts, with the
core feature GDB requires, and register access through KVM_GET/SET_REGS and SREGS."""

from __future__ import annotations

import pathlib
import re
import subprocess
from collections.abc import Callable

import pytest

from guestdbg import plugins
from guestdbg.errors import InvalidRequest
from guestdbg.gdb.target import target_xml
from guestdbg.vcpu import VcpuHandle
from guestdbg_x86 import boot
from guestdbg_x86.gdb_arch import X86GdbArch

from .machines import Machine

pytestmark = pytest.mark.gdb
MakeMachine = Callable[[str], Machine]

CORE_64BIT = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags",
    "cs", "ss", "ds", "es", "fs", "gs",
    "st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7",
    "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop",
)  # fmt: skip
"""gdb/features/i386/64bit-core.xml, in order."""


def _arch() -> X86GdbArch:
    reg = plugins.load()
    info = reg.arches["x86"]
    arch = reg.gdb_arch(info, info.core(None))
    assert isinstance(arch, X86GdbArch)
    return arch


def test_real_gdb_accepts_the_description_as_x86_64(tmp_path: pathlib.Path) -> None:
    arch = _arch()
    xml = tmp_path / "x86.xml"
    xml.write_text(target_xml(arch))
    out = subprocess.run(
        ["gdb-multiarch", "-nx", "-batch", "-ex", f"set tdesc filename {xml}",
         "-ex", "show architecture", "-ex", "maint print registers"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "i386:x86-64" in out.stdout
    assert "warning" not in out.stderr.lower(), out.stderr
    names = re.findall(r"^ (\w+)\s+\d+\s+\d+", out.stdout, re.M)
    assert tuple(names[: len(CORE_64BIT)]) == CORE_64BIT
    assert names[: len(arch.registers)] == [r.name for r in arch.registers]


def test_registers_read_from_a_booted_vcpu(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    arch = _arch()
    values = dict(zip((r.name for r in arch.registers), arch.read_registers(m.vcpu), strict=True))
    assert values["rip"] == m.sym("start")
    assert values["rsp"] == m.sym("stack_top")
    assert values["eflags"] == boot.RFLAGS_FIXED_1
    assert (values["cs"], values["ss"]) == (boot.CODE64_SELECTOR, boot.DATA_SELECTOR)
    assert values["cr0"] == boot.CR0_PE_MP_ET_NE_WP_AM_PG
    assert values["efer"] == boot.EFER_SCE_LME_LMA_NXE
    assert all(values[name] is None for name in ("st0", "st7", "fctrl", "fop"))


def test_a_register_write_goes_through_set_regs_and_reads_back(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    arch = _arch()
    names = [r.name for r in arch.registers]
    target = m.sym("bp_done")
    arch.write_registers(m.vcpu, {names.index("rax"): 0x1122334455667788, arch.pc_regnum: target})
    values = arch.read_registers(m.vcpu)
    assert values[names.index("rax")] == 0x1122334455667788
    assert values[arch.pc_regnum] == target
    assert m.reg("rip") == target


@pytest.mark.parametrize("name", ["cs", "st0", "fctrl"])
def test_a_register_without_a_door_is_refused_and_nothing_is_written(
    make_machine: MakeMachine, name: str
) -> None:
    m = make_machine("reinject")
    arch = _arch()
    names = [r.name for r in arch.registers]
    before = arch.read_registers(m.vcpu)
    with pytest.raises(InvalidRequest, match=name):
        arch.write_registers(m.vcpu, {names.index("rax"): 7, names.index(name): 0x33})
    assert arch.read_registers(m.vcpu) == before


class _Doors:
    """The machine's vCPU, noting which state it was asked for."""

    def __init__(self, vcpu: VcpuHandle) -> None:
        self.vcpu = vcpu
        self.asked: list[str] = []

    def get_regs(self) -> bytearray:
        self.asked.append("regs")
        return self.vcpu.get_regs()

    def get_sregs(self) -> bytearray:
        self.asked.append("sregs")
        return self.vcpu.get_sregs()


def test_some_registers_read_what_all_registers_read_through_only_the_doors_they_need(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("reinject")
    arch = _arch()
    names = [r.name for r in arch.registers]
    full = arch.read_registers(m.vcpu)
    general = [names.index("rax"), arch.pc_regnum, names.index("eflags"), names.index("r15")]
    doors = _Doors(m.vcpu)
    assert arch.read_some_registers(doors, general) == {n: full[n] for n in general}  # type: ignore[arg-type]
    assert doors.asked == ["regs"]  # a condition on rax costs no KVM_GET_SREGS
    mixed = [names.index("cs"), names.index("st0"), names.index("cr3"), names.index("rsp"), 999]
    doors = _Doors(m.vcpu)
    got = arch.read_some_registers(doors, mixed)  # type: ignore[arg-type]
    assert got == {n: full[n] for n in mixed[:-1]}
    assert sorted(doors.asked) == ["regs", "sregs"]
