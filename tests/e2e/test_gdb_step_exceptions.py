"""Host steps never swallow a guest exception, through the real GDB (issue 12).

For every instruction that raises an exception the guest takes (``tw``, ``twi``, ``sc``, an
illegal word, the guest's own breakpoint word, ``mfmsr`` in user mode), GDB puts a breakpoint
on it, continues to it and ``stepi``s: the step ends on the guest's handler, the handler runs
once, and the guest's final log equals an undebugged run's. GDB takes every PowerPC trap under
a breakpoint for a "permanent" breakpoint and would skip it without executing it; the stub
undoes that skip (:mod:`guestdbg.gdb.program_breakpoints`), which is what ``tw``/``twi`` test.
XER is checked the same way: GDB shows the guest's CA, and ``set $xer`` changes what the guest
computes next.
"""

from __future__ import annotations

import functools

import pytest

from guestdbg.demo.elf_info import symbols
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.plugins import default_registry
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_DONE

from .served import NEEDS_GDB, elf, served

pytestmark = NEEDS_GDB

GUEST = "step_exceptions"
RAISING = ["x_tw", "x_twi", "x_sc", "x_illegal", "x_swbp", "x_priv"]
IN_ORDER = [*RAISING[:2], "x_tw_false", *RAISING[2:]]
LOG_BYTES = 16 * 16
MMIO_ADDR = abi.layout().field("struct kvm_run", "mmio", "phys_addr")
EXIT_REASON = abi.layout().field("struct kvm_run", "exit_reason")


def stop_in_handler(sym: dict[str, int], name: str) -> int:
    """Where the step's instruction-complete event comes (docs/stepping.md): ``sc`` completes,
    so at its handler's entry; the others are suppressed by their program interrupt, so once
    the handler's first instruction (``li r20``) has completed."""
    return sym["sc_h"] if name == "x_sc" else sym["prog_h"] + 4


@functools.cache
def undebugged_log() -> tuple[int, bytes]:
    """``taken`` and ``log`` of the guest run to its end with no debugger."""
    sym = symbols(elf(GUEST))
    vm = default_registry().emulated_host("e500mc").create_vm(str(elf(GUEST)), smp=1)
    v = vm.vcpus[0]
    for _ in range(100):
        v.run()
        run = v.kvm_run
        if EXIT_REASON.get(run) == KVM_EXIT_MMIO and MMIO_ADDR.get(run) == HOSTIO_DONE:
            taken = int.from_bytes(vm.read_phys(sym["taken"], 4), "big")
            return taken, vm.read_phys(sym["log"], LOG_BYTES)
    raise AssertionError("the guest never finished on its own")


@pytest.mark.parametrize("command", ["break", "hbreak"])
def test_stepi_from_a_breakpoint_on_each_raising_instruction_enters_the_guests_handler(
    command: str,
) -> None:
    with served(GUEST) as s, s.gdb() as g:
        at = None
        for name in IN_ORDER:
            g.check("delete")
            g.check(f"{command} *{name}")
            if at != s.sym[name]:  # the previous step may have ended on it already
                r = g.check("continue")
                assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", s.sym[name]), name
            r = g.check("stepi")
            want = s.sym[name] + 4 if name == "x_tw_false" else stop_in_handler(s.sym, name)
            assert (r.stop_reason, r.stop_pc) == ("end-stepping-range", want), name
            at = r.stop_pc
        g.check("delete")
        g.check("break *done")
        assert g.check("continue").stop_pc == s.sym["done"]
        taken, log = undebugged_log()
        assert s.word("taken") == taken == len(RAISING) + 1  # + the sc back from user mode
        assert s.view.vm.read_phys(s.sym["log"], LOG_BYTES) == log


def test_stepi_from_a_trap_when_the_next_instruction_has_a_breakpoint_too() -> None:
    """GDB then plants no single-step breakpoint of its own (the user's is already there), so
    nothing tells the stub a ``stepi`` from a ``continue``: the guest takes its trap, its
    handler returns, and the step ends at the user's breakpoint. The trap is not lost."""
    with served(GUEST) as s, s.gdb() as g:
        g.check("break *x_tw")
        g.check("break *x_twi")
        g.check("continue")
        r = g.check("stepi")
        assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", s.sym["x_twi"])
        assert s.word("taken") == 1


def test_continue_from_a_breakpoint_on_a_trap_delivers_the_trap_once() -> None:
    with served(GUEST) as s, s.gdb() as g:
        g.check("break *x_tw")
        g.check("break *x_twi")
        g.check("break *x_tw_false")
        for name in ("x_tw", "x_twi", "x_tw_false"):
            assert g.check("continue").stop_pc == s.sym[name]
        assert s.word("taken") == 2
        g.check("break *done")
        assert g.check("continue").stop_pc == s.sym["done"]
        assert s.word("taken") == undebugged_log()[0]


def test_set_pc_past_a_trap_under_a_breakpoint_still_skips_it() -> None:
    """The user's own PC write is obeyed: only GDB's skip at resume is undone."""
    with served(GUEST) as s, s.gdb() as g:
        g.check("break *x_tw")
        g.check("continue")
        g.check("set $pc = $pc + 4")
        g.check("break *x_sc")
        assert g.check("continue").stop_pc == s.sym["x_sc"]
        assert s.word("taken") == 1, "x_tw skipped by the user; x_twi trapped"


@pytest.mark.parametrize("set_xer", [None, 0, 0x20000000])
def test_gdbs_xer_is_the_guests_mfxer_both_ways(set_xer: int | None) -> None:
    with served(GUEST) as s, s.gdb() as g:
        g.check("break *xer_use")
        g.check("continue")
        assert g.check("p/x $xer").text.strip().endswith("0x20000000"), "addic set CA"
        if set_xer is not None:
            g.check(f"set $xer = {set_xer:#x}")
        g.check("stepi")
        g.check("stepi")
        ca = 1 if set_xer is None else set_xer >> 29
        assert int(g.check("p $r14").text.split("=")[1]) == ca
        r15 = int(g.check("p/x $r15").text.split("=")[1], 16)
        assert r15 == 0, "addze r14 = 0 + CA carries nothing out: the guest's mfxer reads 0"
        assert int(g.check("p/x $xer").text.split("=")[1], 16) == r15
