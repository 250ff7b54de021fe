"""A debugger leaving, politely or not: after ``detach`` and after GDB is killed with SIGKILL (guest
running or stopped, traps and debug registers armed), guest code is byte-identical to what the
loader put there, the guest runs on, no debug register stays armed, and the next GDB attaches to a
clean session (QEMU leaves traps behind on an abrupt disconnect, docs/reference/peers.md §1.4)."""

from __future__ import annotations

import pytest

from guestdbg_booke import abi

from .served import NEEDS_GDB, Served, served

pytestmark = NEEDS_GDB
TRAP_WORD = bytes.fromhex("00dddd00")
DEBUG_REGS = (
    abi.KVM_REG_PPC_IAC1,
    abi.KVM_REG_PPC_IAC2,
    abi.KVM_REG_PPC_DAC1,
    abi.KVM_REG_PPC_DAC2,
)


def arm_everything(s: Served) -> object:
    """A GDB with a software breakpoint, a hardware breakpoint and a write watchpoint in
    place that this guest never reaches (it runs its own breakpoint word only when told)."""
    g = s.gdb("set breakpoint always-inserted on")
    g.check("break *after_bug")
    g.check("hbreak *guest_bug")
    g.check("watch *(int *)&bugs")
    assert s.view.read(s.sym["after_bug"], 4) == TRAP_WORD
    return g


def check_left_clean(s: Served) -> None:
    s.wait_detached()
    assert s.code_changes() == []
    first, now = s.runs_on("rounds")
    assert now != first, "the guest does not run after the debugger left"
    with s.gdb() as g:  # the next debugger: attaches, sees a clean session
        assert s.attached.stopped is not None and s.attached.stop_thread == 1
        assert g.check("monitor points").target == "no points\n"
        vcpu = s.vm.vcpus[0]  # stopped for this GDB: the host may look at its registers
        assert [vcpu.get_one_reg(r) for r in DEBUG_REGS] == [0, 0, 0, 0]
        g.check("set var *(int *)&bug_every = 1")
        g.check("break *round_done")
        r = g.check("continue")  # past the dead session's watch and hbreak sites
        assert (r.stop_reason, r.stop_pc, r.stop_thread) == (
            "breakpoint-hit",
            s.sym["round_done"],
            1,
        )
        assert s.word("bugs") >= 1
        assert "detached" in g.check("detach").console
    s.wait_detached()
    assert s.code_changes() == []


def test_detach_restores_the_code_lets_the_guest_run_and_the_next_gdb_attaches() -> None:
    with served("demo") as s:
        g = arm_everything(s)
        g.check("break *work")
        r = g.check("continue")
        assert r.stop_pc == s.sym["work"]
        assert "detached" in g.check("detach").console
        g.close()
        check_left_clean(s)


def test_gdb_killed_while_the_guest_runs_leaves_nothing_behind() -> None:
    with served("demo") as s:
        g = arm_everything(s)
        g.send("continue")
        first, now = s.runs_on("rounds")
        assert now != first, "the guest did not run under GDB"
        g.kill()
        check_left_clean(s)


@pytest.mark.parametrize("where", ["work", "round_done"])
def test_gdb_killed_at_a_stop_leaves_nothing_behind(where: str) -> None:
    """Stopped on a software breakpoint (its trap word in memory, the vCPU on it) or on the
    hardware one."""
    with served("demo") as s:
        g = arm_everything(s)
        g.check(f"{'break' if where == 'work' else 'hbreak'} *{where}")
        r = g.check("continue")
        assert (r.stop_reason, r.stop_pc) == ("breakpoint-hit", s.sym[where])
        g.kill()
        check_left_clean(s)
