"""Who owns the e500 debug facility when the guest uses IAC/DAC itself.

The guest (``booke_owndebug.S``) arms IAC1 and DAC1 with mtspr, DBCR0 = IDM|IAC1|DAC1W and
MSR[DE], and its IVOR15 handler logs DBSR and DSRR0 (e500mc, rfdi) or CSRR0 (e500v2, rfci).

* host-priority (QEMU's choice, commit 88365d17; docs/reference/kvm-debug-abi.md §5.2):
  the host's points take the facility; the guest's IAC/DAC values are read at attach and written
  back at detach (ONE_REG). DBCR0 cannot be: KVM BookE has no ONE_REG id for it and ignores
  ``kvm_sregs``' E_DEBUG part (same document, §2.3-2.4), and KVM_SET_GUEST_DEBUG without ENABLE
  zeroes it (booke.c ``kvm_arch_vcpu_ioctl_set_guest_debug``). So after detach the guest's enables
  stay off until the guest writes DBCR0 again - then its restored IAC/DAC values are the ones that
  fire.
* guest-priority: the host never enables guest debugging, so ``kvmppc_handle_debug`` keeps
  delivering the guest's own events to it (``guest_debug == 0`` branch), and the host works with
  ``ehpriv 1`` trap words, which the kernel turns into exits without looking at ``guest_debug``.
"""

from __future__ import annotations

import dataclasses

import pytest

from guestdbg.arch import OwnershipPolicy
from guestdbg.errors import UnsupportedByArch
from guestdbg.events import StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg_booke import regs
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT

from .conftest import MakeSession
from .harness import STOP_TIMEOUT, HostIo, Machine, debug_sprs, run_to_done, run_to_stop, stop_of

GUEST_PRIORITY = OwnershipPolicy.GUEST_PRIORITY
GUEST_DBCR0 = regs.DBCR0_IDM | regs.DBCR0_IAC1 | regs.DBCR0_DAC1W
"""What the guest writes to DBCR0 (and its debug handler re-arms after each event)."""


def armed_guest(core: str) -> Machine:
    """The guest after it armed its own IAC1/DAC1 (checkpoint 1), before any debugger."""
    m = Machine("booke_owndebug", core)
    ex = m.run()
    assert (ex.reason, ex.mmio_addr, ex.mmio_word) == (KVM_EXIT_MMIO, HOSTIO_CHECKPOINT, 1)
    return m


def guest_events(m: Machine) -> list[tuple[int, int]]:
    """The guest debug handler's log: (DSRR0 or CSRR0, DBSR) per IAC/DAC event."""
    n = (m.gpr(27) - m.sym["dlog"]) // 8
    raw = m.vm.read_phys(m.sym["dlog"], 8 * n)
    return [
        (int.from_bytes(raw[i : i + 4], "big"), int.from_bytes(raw[i + 4 : i + 8], "big"))
        for i in range(0, len(raw), 8)
    ]


def own_round(m: Machine) -> list[tuple[int, int]]:
    return [(m.sym["g_iac"], regs.DBSR_IAC1), (m.sym["g_store"], regs.DBSR_DAC1W)]


def detach_and_finish(s: Session, io: HostIo) -> None:
    s.detach()
    ev = s.wait_stop(STOP_TIMEOUT)
    assert ev is not None and ev.reason.kind is StopKind.HALT and io.done is not None


def test_host_priority_takes_iac_dac_and_gives_the_guests_values_back_at_detach(
    core: str, session: MakeSession
) -> None:
    m = armed_guest(core)
    sym = m.sym
    guest_values = {"iac1": sym["g_iac"], "iac2": 0, "dac1": sym["g_word"], "dac2": 0}
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    assert s.saved_guest[0] == {**guest_values, "msr_de": 1}
    policy = s.monitor("policy")
    assert "host-priority" in policy
    assert f"'iac1': {sym['g_iac']}" in policy and f"'dac1': {sym['g_word']}" in policy
    s.insert_point(DebugPoint(PointKind.HW_BREAK, sym["h_bl"], 4))
    s.insert_point(DebugPoint(PointKind.WATCH_WRITE, sym["h_word"], 4))
    assert stop_of(run_to_stop(s)) == (StopKind.HW_BREAK, sym["h_bl"], None)
    assert stop_of(run_to_stop(s)) == (StopKind.WATCH, sym["h_store"], sym["h_word"])
    assert debug_sprs(m) == {"iac1": sym["h_bl"], "iac2": 0, "dac1": sym["h_word"], "dac2": 0}
    assert guest_events(m) == []  # the host has the facility: the guest's IAC/DAC are silent
    # kvmppc_vcpu_sync_debug: DE forced on in the guest's MSR on HV, hidden (cleared) on PR
    assert bool(m.reg("msr") & regs.MSR_DE) == (core == "e500mc")
    detach_and_finish(s, io)
    assert debug_sprs(m) == guest_values  # ONE_REG reads back what the guest had
    assert m.reg("msr") & regs.MSR_DE  # and KVM_GET_REGS the guest's MSR[DE]
    assert io.checkpoints == [2, 3]
    # round 2 (after detach) saw no event: DBCR0 was zeroed and nothing can write it back; in
    # round 3 the guest wrote DBCR0 itself, and its own IAC1/DAC1 values fired again
    assert guest_events(m) == own_round(m)
    assert io.done == 2


def test_guest_priority_leaves_the_guests_events_to_it_while_host_traps_stop(
    core: str, session: MakeSession
) -> None:
    m = armed_guest(core)
    sym = m.sym
    io = HostIo()
    s = session(m.vm, core, exit_handler=io, policy=GUEST_PRIORITY)
    assert s.saved_guest[0]["iac1"] == sym["g_iac"]
    assert "guest-priority" in s.monitor("policy")
    original = m.vm.read_phys(sym["h_bl"], 4)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["h_branch"], 4))
    s.insert_point(DebugPoint(PointKind.HW_BREAK, sym["h_bl"], 4))
    assert m.vm.read_phys(sym["h_bl"], 4) == regs.KVMPPC_INST_EHPRIV_DEBUG.to_bytes(4, "big")
    assert s.read_memory(0, sym["h_bl"], 4) == original
    for n in (1, 2):
        assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, sym["h_branch"], None)
        assert guest_events(m) == own_round(m) * n  # delivered to the guest, not reported
        assert stop_of(run_to_stop(s)) == (StopKind.HW_BREAK, sym["h_bl"], None)
    # no KVM_SET_GUEST_DEBUG at all (even a disabling one zeroes DBCR0): the kernel still holds
    # the guest's own DBCR0 (white-box: the emulated kernel's dbg_reg)
    assert s.stats.set_guest_debug_calls == 0
    assert m.vcpu.arch.dbg_reg.dbcr0 == GUEST_DBCR0
    detach_and_finish(s, io)
    assert m.vm.read_phys(sym["h_bl"], 4) == original
    assert guest_events(m) == own_round(m) * 3 and io.done == 6


def _state(s: Session, m: Machine) -> tuple[object, ...]:
    return (
        sorted(map(str, s.points.all_points())),
        s.points.hw_generation,
        s.points.sw_generation,
        s.stats.set_guest_debug_calls,
        dataclasses.asdict(m.vcpu.arch.dbg_reg),
        m.vm.read_phys(m.sym["_start"], m.sym["dlog"] - m.sym["_start"]),
    )


@pytest.mark.parametrize("kind", [PointKind.WATCH_WRITE, PointKind.WATCH_READ])
def test_guest_priority_refuses_a_host_watchpoint_and_nothing_changes(
    core: str, session: MakeSession, kind: PointKind
) -> None:
    m = armed_guest(core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io, policy=GUEST_PRIORITY)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym["h_branch"], 4))
    before = _state(s, m)
    with pytest.raises(UnsupportedByArch):
        s.insert_point(DebugPoint(kind, m.sym["h_word"], 4))
    assert _state(s, m) == before
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, m.sym["h_branch"], None)
    assert guest_events(m) == own_round(m)


def test_guest_priority_steps_a_branch_bl_blr_and_a_tw_through_the_guests_handler(
    core: str, session: MakeSession
) -> None:
    """Planted-trap steps: each ends where the instruction sent the PC; the ``tw`` step ends
    when the guest's program handler has returned, after it ran exactly once."""
    m = armed_guest(core)
    sym = m.sym
    io = HostIo()
    s = session(m.vm, core, exit_handler=io, policy=GUEST_PRIORITY)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["h_branch"], 4))
    s.insert_point(DebugPoint(PointKind.HW_BREAK, sym["h_bl"], 4))
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, sym["h_branch"], None)
    path = ["h_bl", "h_func", "h_store", "h_blr", "h_tw", "h_after_tw"]
    for label in path:  # b (onto the host's hbreak: a step), bl, addi, stw, blr, tw
        assert stop_of(run_to_stop(s, step=True)) == (StopKind.STEP, sym[label], None)
        if label == "h_func":
            assert m.reg("lr") == sym["h_tw"]
    assert m.gpr(26) == 1  # the program handler ran once, for the stepped tw
    assert s.points.all_points() is not None and len(list(s.points.all_points())) == 2
    assert m.vm.read_phys(sym["h_func"], 4) != s.ops[0].sw_break_insn  # planted traps gone
    assert stop_of(run_to_stop(s)) == (StopKind.SW_BREAK, sym["h_branch"], None)
    assert guest_events(m) == own_round(m) * 2


@pytest.mark.parametrize("policy", [OwnershipPolicy.HOST_PRIORITY, GUEST_PRIORITY])
def test_e500v2_guest_priority_traps_exit_only_from_guest_supervisor_state(
    core: str, policy: str, session: MakeSession
) -> None:
    """The limit of guest-priority on BookE-PR: ``ehpriv 1`` is emulated for the guest's
    supervisor code only (``kvmppc_handle_exit`` PROGRAM: "Program traps generated by user-level
    software must be handled by the guest kernel"), so a host trap word in guest user code is a
    program interrupt for the guest (ESR[PIL]: e500v2 has no ehpriv) and its instruction never
    runs. On e500mc ``ehpriv`` traps to the hypervisor from any guest state; under host-priority
    the kernel's word exits from user code too because USE_SW_BP is set."""
    m = Machine("booke_usermode", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io, policy=policy)
    for label in ("s_insn", "u_insn"):
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym[label], 4))
    stops = [(kind, pc) for kind, pc, _ in run_to_done(s, io)[:-1]]
    leaks = core == "e500v2" and policy == GUEST_PRIORITY
    if leaks:
        assert stops == [(StopKind.SW_BREAK, m.sym["s_insn"])]
        assert io.done == 1  # the guest's program handler got the host's trap word...
        raw = m.vm.read_phys(m.sym["log"], 8)
        assert raw == m.sym["u_insn"].to_bytes(4, "big") + regs.ESR_PIL.to_bytes(4, "big")
        assert m.gpr(6) == 0  # ...and skipped it: the guest's own u_insn never ran
    else:
        assert stops == [(StopKind.SW_BREAK, m.sym["s_insn"]), (StopKind.SW_BREAK, m.sym["u_insn"])]
        assert (io.done, m.gpr(5), m.gpr(6)) == (0, 1, 1)


def test_host_priority_gives_a_guest_without_msr_de_its_clear_de_back(
    core: str, session: MakeSession
) -> None:
    """The other direction: a guest that never set MSR[DE] gets DE forced on while the host
    debugs (on HV, ``kvmppc_vcpu_sync_debug``) and must not keep it after detach."""
    m = Machine("booke_points", core)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    assert s.saved_guest[0]["msr_de"] == 0
    s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym["code_b"], 4))
    assert stop_of(run_to_stop(s)) == (StopKind.HW_BREAK, m.sym["code_b"], None)
    detach_and_finish(s, io)
    assert not m.reg("msr") & regs.MSR_DE
