"""The 64-bit BookE cores end to end: ``guestdbg serve --arch e5500|e6500`` with a real GDB.

The guest is the demo built as a 64-bit ELF, running in 64-bit mode (``demo.S`` with GUEST64,
``guests/build.py build64``): GDB sees the core's architecture and 64-bit registers, stops at a
software breakpoint, a hardware breakpoint and a watchpoint, steps, and the guest's own
breakpoint word goes back to the guest as the program interrupt the hardware would raise
(ESR[PIL], docs/reference/kvm-debug-abi.md §3.7, §9.4). On e6500 GDB reads and writes
the AltiVec registers through KVM_REG_PPC_VR0.. (§9.3), and the guest computes with what GDB
wrote.

These need the emulated ``e5500-unicorn`` / ``e6500-unicorn`` hosts, which come from their own
branch; without them the 64-bit tests are skipped, saying so. The main walk also runs on e500mc
with the 32-bit build of the same demo, so its GDB side is exercised today.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from guestdbg.demo.elf_info import symbols
from guestdbg.demo.gdbmi import GdbMi
from guestdbg.plugins import default_registry
from guestdbg_booke.guests.build import PACKAGE_DIR, build64

from .served import BUILD, GUESTS, NEEDS_GDB, WAIT, elf
from .test_cli import GUESTDBG, serving

pytestmark = NEEDS_GDB
CORES64 = ("e5500", "e6500")
ESR_PIL = 0x08000000


def needs_host(core: str) -> None:
    names = [h.name for h in default_registry().emulated_hosts()]
    if f"{core}-unicorn" not in names:
        pytest.skip(
            f"no emulated {core} host: {core}-unicorn is not registered (the 64-bit hosts come "
            f"from their own branch); registered: {', '.join(names)}"
        )


@functools.cache
def elf64(source: Path) -> Path:
    return build64(source, BUILD)


@contextmanager
def attached(core: str, guest: Path) -> Iterator[GdbMi]:
    with serving(guest, "--arch", core) as (where, banner), GdbMi(guest, timeout=WAIT * 3) as g:
        assert f"{core} guest" in banner, banner
        g.check("set endian big")
        r = g.check(f"target remote {where}")
        assert r.stopped is not None and r.stop_pc == symbols(guest)["_start"]
        yield g
        assert "detached" in g.check("detach").console


def value(g: GdbMi, expression: str) -> str:
    text = g.check(f"print {expression}").console.strip()
    return text.split(" = ", 1)[1]


@pytest.mark.parametrize("core", ["e500mc", *CORES64])
def test_serve_debugs_a_64bit_guest_with_every_kind_of_stop_and_reinjects_its_own_word(
    core: str,
) -> None:
    wide = core in CORES64
    if wide:
        needs_host(core)
    guest = elf64(PACKAGE_DIR / "demo.S") if wide else elf("demo")
    sym = symbols(guest)
    with attached(core, guest) as g:
        assert f'(currently "powerpc:{core}")' in g.check("show architecture").console
        word = "8" if wide else "4"
        assert value(g, "sizeof($pc)") == word and value(g, "sizeof($r1)") == word

        g.check("break *work")
        r = g.check("continue")
        assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", sym["work"])
        cm = int(value(g, "$msr")) & (1 << 31)
        assert bool(cm) == wide, "a 64-bit guest runs in 64-bit mode (MSR[CM])"
        r = g.check("stepi")
        assert r.stop_pc == sym["work"] + 4
        g.check("delete")

        g.check("hbreak *round_done")
        r = g.check("continue")
        assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", sym["round_done"])
        g.check("delete")

        before = int(value(g, "*(int *)&rounds"))
        g.check("watch *(int *)&rounds")
        r = g.check("continue")
        assert r.stop_reason == "watchpoint-trigger", r.stopped
        assert int(value(g, "*(int *)&rounds")) == before + 1
        g.check("delete")

        if wide:  # total64 grows by 5050 << 24 a round: past 2**32 after 86 rounds
            assert int(value(g, "*(long long *)&total64")) == (before + 1) * (5050 << 24)

        g.check("break *work")  # a host software breakpoint in place: USE_SW_BP is on
        g.check("set var *(int *)&bug_every = 1")
        bugs = int(value(g, "*(int *)&bugs"))
        g.check("hbreak *after_bug")
        for _ in range(3):
            r = g.check("continue")
            assert r.stop_pc in (sym["work"], sym["after_bug"]), r.stopped
        assert int(value(g, "*(int *)&bugs")) > bugs, "the guest's own word went back to it"
        assert int(value(g, "*(int *)&last_esr")) == ESR_PIL
        g.check("set var *(int *)&bug_every = 0")
        g.check("delete")


def test_e6500_shows_and_changes_altivec_registers() -> None:
    needs_host("e6500")
    guest = elf64(GUESTS / "altivec64.S")
    sym = symbols(guest)
    with attached("e6500", guest) as g:
        g.check("break *vec_added")
        for _ in range(2):
            r = g.check("continue")
            assert r.stop_pc == sym["vec_added"]
        assert value(g, "$vr1.v4_int32") == "{7, 7, 7, 7}"
        assert value(g, "$vr2.v4_int32") == "{-2, -2, -2, -2}"
        assert value(g, "$vr3.v4_int32") == "{14, 14, 14, 14}"
        g.check("set var $vr1.v4_int32[2] = 100")
        assert value(g, "$vr1.v4_int32") == "{7, 7, 100, 7}"
        r = g.check("continue")
        assert r.stop_pc == sym["vec_added"]
        assert value(g, "$vr3.v4_int32") == "{21, 21, 114, 21}"
        out = g.check("x/4dw &out").console
        assert re.search(r":\s+14\s+14\s+14\s+14", out), out  # stored before this round
        assert value(g, "sizeof($vscr)") == "4"


def test_e5500_has_no_altivec_registers() -> None:
    needs_host("e5500")
    guest = elf64(PACKAGE_DIR / "demo.S")
    with attached("e5500", guest) as g:
        r = g.run("info registers vr0")
        assert not r.ok and "Invalid register" in (r.error or ""), r.text


@pytest.mark.parametrize("core", CORES64)
def test_the_demo_runs_on_the_64bit_cores(core: str, tmp_path: Path) -> None:
    needs_host(core)
    out = subprocess.run(
        [*GUESTDBG, "demo", "--arch", core, "--build-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "demo finished: 7 steps" in out.stdout
    assert re.search(r"Breakpoint 1, 0x[0-9a-f]{16} ", out.stdout), out.stdout  # a 64-bit PC


def test_the_64bit_tests_are_skipped_with_the_reason_when_no_host_is_registered() -> None:
    """Guards the skip itself: it names the missing host, and only when it is missing."""
    names = [h.name for h in default_registry().emulated_hosts()]
    for core in CORES64:
        if f"{core}-unicorn" in names:
            needs_host(core)  # registered: no skip
            continue
        with pytest.raises(pytest.skip.Exception, match=f"{core}-unicorn is not registered"):
            needs_host(core)
