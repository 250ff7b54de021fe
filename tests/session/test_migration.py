"""Migrating a debug session with a pending reinjection (issue 4): the guest's handler runs
exactly once whatever moment the VM is saved at, and bad documents change nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from guestdbg.errors import MigrationError
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke import abi, numbering, regs
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT, HOSTIO_DONE, EmulatedBookeVm

from .support import guest, symbols

GUEST = "session_reinject"
SYM = symbols(GUEST)
L = abi.layout()
MMIO_ADDR = L.field("struct kvm_run", "mmio", "phys_addr")


def stop_at_host_io(index: int, reason: int, run: memoryview) -> bool:
    """The guest's checkpoint and done stores stop the VM (a HALT stop); other MMIO runs on."""
    return not (reason == KVM_EXIT_MMIO and MMIO_ADDR.get(run) in (HOSTIO_CHECKPOINT, HOSTIO_DONE))


def new_vm() -> EmulatedBookeVm:
    vm = EmulatedBookeVm("e500mc")
    vm.load_elf(guest(GUEST))
    return vm


def word(vm: EmulatedBookeVm, sym: str, offset: int = 0) -> int:
    return int.from_bytes(vm.read_phys(SYM[sym] + offset, 4), "big")


def handled(vm: EmulatedBookeVm) -> int:
    return word(vm, "vars")


def run_to(s: Session, kind: StopKind) -> None:
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is kind, ev


def session(vm: EmulatedBookeVm, sessions: list[Session], **kw: Any) -> Session:
    s = Session(vm, "e500mc", exit_handler=stop_at_host_io, **kw)
    sessions.append(s)
    return s


def migrate(
    vm: EmulatedBookeVm, s: Session, sessions: list[Session]
) -> tuple[EmulatedBookeVm, Session]:
    """Save both halves (the VMM's VM state, guestdbg's debug state) through JSON and restore
    them on a new VM with a new session, as a migration would."""
    doc = json.loads(json.dumps(s.save_state()))
    snap = copy.deepcopy(vm.snapshot())
    new = EmulatedBookeVm.from_snapshot(snap)
    s2 = Session.restore(new, doc, exit_handler=stop_at_host_io)
    sessions.append(s2)
    s2.catch_guest_events = False
    return new, s2


def to_pending(sessions: list[Session]) -> tuple[EmulatedBookeVm, Session]:
    vm = new_vm()
    s = session(vm, sessions, catch_guest_events=True)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SYM["unused"], 4))  # USE_SW_BP is on
    run_to(s, StopKind.GUEST_EVENT)
    return vm, s


@pytest.mark.parametrize("moment", ["decided", "delivered", "handled"])
def test_the_guest_handler_runs_exactly_once_across_a_migration(
    sessions: list[Session], moment: str
) -> None:
    vm, s = to_pending(sessions)
    pending = s.ports[0].pending
    assert pending is not None and pending.exception == numbering.PROGRAM
    assert pending.pc == SYM["own_trap"]
    if moment in ("delivered", "handled"):
        assert s.deliver_pending(0)
        assert s.ports[0].pending is None
    if moment == "handled":
        s.catch_guest_events = False
        run_to(s, StopKind.HALT)  # the checkpoint after the handler returned
        assert handled(vm) == 1
    doc = s.save_state()
    assert (doc["vcpus"][0]["pending"] is not None) == (moment == "decided")  # type: ignore[index]
    new, s2 = migrate(vm, s, sessions)
    if moment != "handled":
        run_to(s2, StopKind.HALT)  # checkpoint
    run_to(s2, StopKind.HALT)  # done
    assert handled(new) == 1
    assert word(new, "vars", 4) == SYM["own_trap"]  # SRR0 at the instruction
    assert word(new, "vars", 8) == regs.ESR_PIL
    assert s2.filter_stats().reported == 0  # never shown to the debugger as its own


def test_restore_adopts_the_inserted_trap_words_and_detach_removes_them(
    sessions: list[Session],
) -> None:
    vm, s = to_pending(sessions)
    pristine = EmulatedBookeVm("e500mc")
    pristine.load_elf(guest(GUEST))
    original = pristine.read_phys(SYM["unused"], 4)
    assert vm.read_phys(SYM["unused"], 4) == s.trap_writer.insn != original
    new, s2 = migrate(vm, s, sessions)
    assert s2.read_memory(0, SYM["unused"], 4) == original  # still shadowed after the move
    s2.detach()
    s2.interrupt()
    assert s2.wait_stop(10) is not None
    assert new.read_phys(SYM["unused"], 4) == original


def bad_documents(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    d = copy.deepcopy(doc)
    d["version"] = 99
    out.append(("version 99", d))
    d = copy.deepcopy(doc)
    d["format"] = "something/else"
    out.append(("not a guestdbg", d))
    d = copy.deepcopy(doc)
    d["points"][0]["addr"] = "0x100"
    out.append(("addr: expected an integer", d))
    d = copy.deepcopy(doc)
    d["points"][0]["kind"] = "laser"
    out.append(("unknown point kind", d))
    d = copy.deepcopy(doc)
    d["points"][0]["trap"]["gpa"] = SYM["before_trap"]
    out.append(("not the breakpoint word", d))
    d = copy.deepcopy(doc)
    d["vcpus"].append(copy.deepcopy(d["vcpus"][0]))
    out.append(("2 vCPUs, the VM has 1", d))
    d = copy.deepcopy(doc)
    d["vcpus"][0]["pending"]["exception"]["space"] = "x86.vector"
    out.append(("not this arch", d))
    d = copy.deepcopy(doc)
    d["vcpus"][0]["pending"]["payload"] = {"esr": "PIL"}
    out.append(("names must map to integers", d))
    d = copy.deepcopy(doc)
    del d["policy"]
    out.append(("missing field 'policy'", d))
    d = copy.deepcopy(doc)
    d["points"][0]["refs"] = 2**40  # once took a loop of that many inserts (fuzzing found it)
    out.append(("refs must be between 1 and", d))
    return out


def test_a_bad_document_is_refused_with_a_clear_error_and_changes_nothing(
    sessions: list[Session],
) -> None:
    vm, s = to_pending(sessions)
    doc = json.loads(json.dumps(s.save_state()))
    snap = vm.snapshot()
    for why, bad in bad_documents(doc):
        target = EmulatedBookeVm.from_snapshot(copy.deepcopy(snap))
        before = target.snapshot()
        with pytest.raises(MigrationError, match=why):
            Session.restore(target, bad)
        assert target.snapshot() == before, why
    good = EmulatedBookeVm.from_snapshot(copy.deepcopy(snap))
    doc["points"][0]["refs"] = 3
    s2 = Session.restore(good, doc)
    sessions.append(s2)
    assert s2.ports[0].pending is not None
    assert next(iter(s2.points.sw.values())).refs == 3  # one insert, three references


def test_a_host_step_over_the_guests_own_breakpoint_word_enters_its_handler(
    sessions: list[Session],
) -> None:
    """QEMU claims every status-0 exit while stepping, so the guest loses this exception on
    each step over it (``kvm_handle_debug``, docs/reference/kvm-debug-abi.md §5.2); here
    the step ends in the guest's handler instead."""
    vm = new_vm()
    s = session(vm, sessions)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SYM["before_trap"], 4))
    run_to(s, StopKind.SW_BREAK)
    s.remove_point(DebugPoint(PointKind.SW_BREAK, SYM["before_trap"], 4))
    s.resume({0: ResumeAction(step=True)})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.pc == SYM["own_trap"]
    s.resume({0: ResumeAction(step=True)})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.STEP
    # the step ended in the guest's handler, once its first instruction completed (the IC event
    # of docs/stepping.md)
    assert ev.reason.pc == SYM["program_handler"] + 4
    run_to(s, StopKind.HALT)  # checkpoint
    assert handled(vm) == 1
    assert word(vm, "vars", 4) == SYM["own_trap"]


SMP_GUEST = "session_reinject_smp"
SMP = symbols(SMP_GUEST)


class DoneCounter:
    """Exit handler: each vCPU's done store is noted; the VM stops once every vCPU is done."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done: set[int] = set()

    def __call__(self, index: int, reason: int, run: memoryview) -> bool:
        if reason == KVM_EXIT_MMIO and MMIO_ADDR.get(run) == HOSTIO_DONE:
            self.done.add(index)
            return len(self.done) < self.n
        return True


@pytest.mark.parametrize("smp", [1, 2, 4])
@pytest.mark.parametrize("moment", ["decided", "delivered"])
def test_every_vcpus_pending_reinjection_survives_migration_exactly_once(
    sessions: list[Session], smp: int, moment: str
) -> None:
    vm = EmulatedBookeVm("e500mc", smp=smp)
    vm.load_elf(guest(SMP_GUEST))
    s = Session(vm, "e500mc", exit_handler=DoneCounter(smp), catch_guest_events=True)
    sessions.append(s)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SMP["unused"], 4))
    caught: set[int] = set()
    while len(caught) < smp:  # catch every vCPU's own trap, one stop at a time
        s.resume({i: ResumeAction() for i in range(smp) if i not in caught})
        ev = s.wait_stop(10)
        assert ev is not None and ev.reason.kind is StopKind.GUEST_EVENT
        assert ev.reason.pc == SMP["own_trap"]
        caught.add(ev.vcpu)
    assert all(r.pending is not None for r in s.ports)
    if moment == "delivered":
        for i in range(smp):
            assert s.deliver_pending(i)
    doc = json.loads(json.dumps(s.save_state()))
    new = EmulatedBookeVm.from_snapshot(copy.deepcopy(vm.snapshot()))
    s2 = Session.restore(new, doc, exit_handler=DoneCounter(smp))
    sessions.append(s2)
    s2.catch_guest_events = False
    s2.resume({i: ResumeAction() for i in range(smp)})
    ev = s2.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.HALT
    counts = [int.from_bytes(new.read_phys(SMP["handled"] + 4 * i, 4), "big") for i in range(smp)]
    assert counts == [1] * smp
