"""Arch plugins are found through entry points, and the core never imports an arch package."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

from guestdbg import plugins
from guestdbg.errors import GuestDebugError, UnknownArch

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARCH_PACKAGES = ("guestdbg_booke", "guestdbg_x86")


def test_both_arches_are_discovered_through_entry_points() -> None:
    reg = plugins.load()
    assert {"ppc_booke", "x86"} <= set(reg.arches)
    booke = reg.arches["ppc_booke"]
    assert booke.kvm_host_arch == "powerpc"
    assert [c.name for c in booke.cores] == ["e500mc", "e5500", "e6500", "e500v2"]
    assert booke.core("e500mc").caps.hw_breakpoints == 2
    # KVMPPC_BOOKE_IAC_NUM/DAC_NUM are 2/2 for every Freescale BookE core, 64-bit ones too
    assert {c.caps for c in booke.cores} == {booke.core("e500mc").caps}
    assert {c.name: c.register_bits for c in booke.cores} == {
        "e500mc": 32,
        "e5500": 64,
        "e6500": 64,
        "e500v2": 32,
    }
    assert reg.arches["x86"].core(None).register_bits == 64
    assert reg.arches["x86"].core(None).caps.shared_slots


def test_core_name_resolves_to_its_arch() -> None:
    reg = plugins.load()
    info, core = reg.resolve("e500v2")
    assert (info.name, core.name) == ("ppc_booke", "e500v2")
    info, core = reg.resolve("e6500")
    assert (info.name, core.name, core.register_bits) == ("ppc_booke", "e6500", 64)


def test_a_core_of_no_known_width_is_refused() -> None:
    from guestdbg.arch import CoreInfo

    caps = plugins.load().arches["x86"].core(None).caps
    with pytest.raises(GuestDebugError, match="register_bits must be 8, 16, 32, 64 or 128"):
        CoreInfo("odd", "a 48-bit core", caps, 48)


def test_unknown_arch_is_a_clear_error() -> None:
    reg = plugins.load()
    with pytest.raises(UnknownArch, match=r"no arch plugin provides 'sparc'.*e500mc"):
        reg.resolve("sparc")


def test_without_entry_points_nothing_is_found() -> None:
    assert plugins.load(entry_points=False).arches == {}


def test_two_plugins_claiming_one_arch_are_refused() -> None:
    from guestdbg_x86 import plugin as x86

    class Impostor:
        guestdbg_arch = staticmethod(x86.guestdbg_arch)

    with pytest.raises(GuestDebugError, match="two plugins claim arch 'x86'"):
        plugins.load(extra_plugins=(Impostor(),))


def test_a_plugin_registered_later_overrides_a_firstresult_answer() -> None:
    """As ``hookspecs`` documents: pluggy asks the plugin registered last first, and a
    ``tryfirst`` implementation before any unmarked one."""
    from guestdbg.hookspecs import hookimpl

    class Later:
        @hookimpl
        def guestdbg_gdb_arch(self, arch: object, core: object) -> str:
            return "later"

    class Earliest:
        @hookimpl(tryfirst=True)
        def guestdbg_gdb_arch(self, arch: object, core: object) -> str:
            return "tryfirst"

    installed = plugins.load()
    info, core = installed.resolve("e500mc")
    assert installed.gdb_arch(info, core) not in ("later", "tryfirst")
    assert plugins.load(extra_plugins=(Later(),)).gdb_arch(info, core) == "later"
    both = plugins.load(extra_plugins=(Earliest(), Later()))
    assert both.gdb_arch(info, core) == "tryfirst"


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_source_imports_no_arch_package() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "core" / "guestdbg").rglob("*.py")
        if _imports(p) & set(ARCH_PACKAGES)
    ]
    assert offenders == []


def test_importing_every_core_module_loads_no_arch_package() -> None:
    code = (
        "import pkgutil, importlib, sys, guestdbg\n"
        "for m in pkgutil.walk_packages(guestdbg.__path__, 'guestdbg.'):\n"
        "    if m.name != 'guestdbg.__main__': importlib.import_module(m.name)\n"
        f"bad = [n for n in sys.modules if n.split('.')[0] in {ARCH_PACKAGES!r}]\n"
        "print(len(list(pkgutil.walk_packages(guestdbg.__path__, 'guestdbg.'))), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert int(out.stdout.split()[0]) > 10  # the walk really saw the core's modules


def test_plugins_command_lists_both_arches_with_capabilities() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "guestdbg", "plugins"], capture_output=True, text=True, check=True
    ).stdout
    assert "ppc_booke:" in out and "x86:" in out
    assert "core e500mc" in out and "hw_breakpoints: 2" in out
    assert "hw_watchpoints: shared" in out
