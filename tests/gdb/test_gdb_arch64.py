"""The real gdb-multiarch loads each BookE core's target description, 64-bit ones included.

gdb-multiarch 13.1 cannot ``set architecture powerpc:e5500`` (nor e6500, nor e500mc): the
architecture must come from the description's ``<architecture>``
(docs/reference/kvm-debug-abi.md §9.5). These tests load the descriptions the plugin
serves, with the ELF of the core's width (built here by GNU as and ld), and read back what GDB
made of them: the architecture, register sizes, AltiVec's ``vec128`` views, and the core's own
instruction set in the disassembly. Then GDB drives the stub with the e6500 description over
the emulated e500mc host's vCPU (the KVM bytes are the same, §9.2; the 64-bit hosts are another
branch's): registers are 64 bits wide, the host's refusal of VR0-31 shows as ``<unavailable>``,
and a breakpoint and a step work.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from guestdbg.arch import ArchInfo, CoreInfo
from guestdbg.demo.elf_info import symbols
from guestdbg.gdb.server import GdbServer
from guestdbg.gdb.target import GdbArch, target_xml
from guestdbg.hookspecs import hookimpl
from guestdbg.plugins import load
from guestdbg.session import Session
from guestdbg_booke.gdb_arch import gdb_arch_for
from guestdbg_booke.guests.build import PACKAGE_DIR, build, build64

pytestmark = [
    pytest.mark.gdb,
    pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch"),
]
ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "guests" / "build" / "gdb64"
WIDTH = {"e500mc": 32, "e5500": 64, "e6500": 64, "e500v2": 32}


@functools.cache
def demo_elf(bits: int) -> Path:
    return (build64 if bits == 64 else build)(PACKAGE_DIR / "demo.S", BUILD)


def gdb(*commands: str, elf: Path | None = None) -> str:
    args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set endian big"]
    if elf is not None:
        args += ["-ex", f"file {elf}"]
    for c in commands:
        args += ["-ex", c]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


def values(out: str) -> list[str]:
    """GDB's ``$n = value`` lines, in order."""
    return re.findall(r"^\$\d+ = (.*)$", out, re.MULTILINE)


@pytest.mark.parametrize("core", list(WIDTH))
def test_gdb_takes_each_cores_architecture_and_register_widths_from_its_description(
    core: str, tmp_path: Path
) -> None:
    arch = gdb_arch_for(core)
    xml = tmp_path / f"{core}.xml"
    xml.write_text(target_xml(arch))
    out = gdb(
        f"set tdesc filename {xml}",
        "show architecture",
        "p sizeof($pc)",
        "p sizeof($r31)",
        "p sizeof($cr)",
        "p sizeof($srr0)",
        "p sizeof($esr)",
        elf=demo_elf(WIDTH[core]),
    )
    assert f'(currently "{arch.architecture}")' in out, out
    word = str(WIDTH[core] // 8)
    assert values(out) == [word, word, "4", word, "4"], out


def test_the_e6500_description_gives_gdb_altivec_with_its_own_vec128_views(
    tmp_path: Path,
) -> None:
    xml = tmp_path / "e6500.xml"
    xml.write_text(target_xml(gdb_arch_for("e6500")))
    out = gdb(
        f"set tdesc filename {xml}",
        "p sizeof($vr31)",
        "p sizeof($vscr)",
        "p sizeof($vrsave)",
        "ptype $vr0",
        "maint print reggroups",
        elf=demo_elf(64),
    )
    assert values(out)[:3] == ["16", "4", "4"], out
    for view in ("uint128_t uint128;", "v4f v4_float;", "v4i32 v4_int32;", "v16i8 v16_int8;"):
        assert view in out, out
    assert re.search(r"^\s*vector\s+user", out, re.MULTILINE), out


def test_set_architecture_refuses_the_booke_names_so_the_description_must_carry_them() -> None:
    """Why the stub names the core in ``<architecture>``: ``set architecture`` cannot."""
    for name in ("powerpc:e500mc", "powerpc:e5500", "powerpc:e6500"):
        assert f"Architecture `{name}' not recognized." in gdb(f"set architecture {name}")


def test_the_core_name_selects_the_cores_instruction_set_in_gdbs_disassembly(
    tmp_path: Path,
) -> None:
    """``tlbwe`` (in the demo's host-I/O mapping) is BookE's: under ``powerpc:common64``, QEMU's
    name for any 64-bit PowerPC, GDB shows the same word as Book3S's ``tlbld``. AltiVec's
    ``vadduwm`` is an instruction of e6500 and not of e5500, which has no AltiVec."""
    elf = demo_elf(64)
    tlbwe = next(
        int(line.split(":")[0], 16)
        for line in subprocess.run(
            ["powerpc-linux-gnu-objdump", "-d", "-M", "e6500", str(elf)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if line.rstrip().endswith("tlbwe")
    )
    seen = {}
    for core, arch_name in (
        ("e5500", "powerpc:e5500"),
        ("e6500", "powerpc:e6500"),
        ("e5500", "powerpc:common64"),
    ):
        xml = tmp_path / f"{arch_name.replace(':', '_')}.xml"
        xml.write_text(target_xml(gdb_arch_for(core)).replace("powerpc:e5500", arch_name))
        seen[arch_name] = gdb(f"set tdesc filename {xml}", f"x/i {tlbwe:#x}", elf=elf)
    assert re.search(r"\ttlbwe\s*$", seen["powerpc:e5500"], re.MULTILINE), seen
    assert re.search(r"\ttlbwe\s*$", seen["powerpc:e6500"], re.MULTILINE), seen
    assert re.search(r"\ttlbld\s", seen["powerpc:common64"]), seen

    vector_elf = build64(ROOT / "tests" / "e2e" / "guests" / "altivec64.S", BUILD)
    vec_loop = symbols(vector_elf)["vec_loop"]
    shown = {}
    for core in ("e5500", "e6500"):
        xml = tmp_path / f"vec_{core}.xml"
        xml.write_text(target_xml(gdb_arch_for(core)))
        shown[core] = gdb(f"set tdesc filename {xml}", f"x/i {vec_loop:#x}", elf=vector_elf)
    assert re.search(r"\tvadduwm\s+v3,v3,v1", shown["e6500"]), shown
    assert re.search(r"\t\.long 0x", shown["e5500"]), shown


# -- the stub, with the e6500 description, over a live vCPU ------------------------------------


class E6500Registers:
    """Registered after the BookE plugin, so its answer wins (docs/porting.md §2): the e6500
    description for the e500mc core of the emulated host."""

    @hookimpl
    def guestdbg_gdb_arch(self, arch: ArchInfo, core: CoreInfo) -> GdbArch | None:
        return gdb_arch_for("e6500") if arch.name == "ppc_booke" else None


@pytest.fixture
def served_e6500_layout() -> Iterator[tuple[int, dict[str, int]]]:
    reg = load(extra_plugins=(E6500Registers(),))
    elf = build(PACKAGE_DIR / "demo.S", BUILD)
    info, core = reg.resolve("e500mc")
    vm = reg.emulated_host("e500mc").create_vm(str(elf))
    session = Session(vm, info, core.name, registry=reg)
    server = GdbServer(session, ("127.0.0.1", 0))
    server.start()
    try:
        bound = server.bound_address
        assert isinstance(bound, tuple)
        yield bound[1], symbols(elf)
    finally:
        server.close()
        session.close()


def test_gdb_debugs_through_the_64bit_description_and_sees_the_refused_vector_file(
    served_e6500_layout: tuple[int, dict[str, int]],
) -> None:
    port, sym = served_e6500_layout
    work = sym["work"]
    out = gdb(
        f"target remote 127.0.0.1:{port}",
        "show architecture",
        "p sizeof($pc)",
        "p/x $pc",
        "info registers vr0",
        "p $vscr",
        "p/x $vrsave",
        f"break *{work:#x}",
        "continue",
        "p/x $pc",
        "stepi",
        "p/x $pc",
        "set $r20 = 0x1234",
        "p/x $r20",
        "detach",
    )
    assert 'currently "powerpc:e6500"' in out, out
    assert re.search(r"vr0\s+\{uint128 = <unavailable>, v4_float = \{<unavailable>", out), out
    got = values(out)
    assert got[0] == "8", out
    assert got[1] == f"{sym['_start']:#x}", out
    assert got[2] == "<unavailable>", out
    assert got[3].startswith("0x"), out  # VRSAVE: booke.c answers it on every core
    assert got[4:7] == [f"{work:#x}", f"{work + 4:#x}", "0x1234"], out
