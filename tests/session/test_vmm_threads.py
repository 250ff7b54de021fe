"""A VMM that keeps its own vCPU threads (``Session(..., vcpu_threads="vmm")``): the session
never runs a vCPU; the VMM's threads call their port around every KVM_RUN (the loop of
``examples/vmm_threads.py``, used here as is). Attaching while the guest runs parks every thread
at its next exit; all-stop, stepping one vCPU, breakpoints and detach work through the ports; an
attach the VMM's threads never answer fails with a clear error instead of blocking forever."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guestdbg.errors import InvalidRequest, NotStopped
from guestdbg.events import ResumeAction, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke import abi

from .support import make_vm, symbols

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from vmm_threads import VcpuThreads  # the example VMM loop, as documented

GUEST = "session_smp"
SYM = symbols(GUEST)
PC = abi.layout().field("struct kvm_regs", "pc")


def pcs(vm: object) -> list[int]:
    return [PC.get(v.get_regs()) for v in vm.vcpus]  # type: ignore[attr-defined]


def slot(vm: object, vcpu: int) -> int:
    raw = vm.read_phys(SYM["slots"] + 16 * vcpu, 4)  # type: ignore[attr-defined]
    return int.from_bytes(raw, "big")


def runs_on(vm: object, vcpu: int, after: int) -> bool:
    """Whether the vCPU's pass count moves past ``after``: polled up to a hang guard, not a
    fixed sleep (on a loaded 2-core machine a thread can wait longer than 20 ms for a core)."""
    deadline = time.monotonic() + 10
    while slot(vm, vcpu) <= after:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def never_called(index: int, reason: int, run: memoryview) -> bool:
    raise AssertionError(f"the counting guest made a device exit ({reason}) on vCPU {index}")


@pytest.fixture
def vmm() -> Iterator[tuple[object, Session, VcpuThreads]]:
    vm = make_vm(GUEST, smp=2)
    s = Session(vm, "e500mc", vcpu_threads="vmm")  # type: ignore[arg-type]
    threads = VcpuThreads(vm, s, never_called)  # type: ignore[arg-type]
    threads.start()
    yield vm, s, threads
    threads.stop()


def test_attaching_while_the_vmms_threads_run_parks_every_one(
    vmm: tuple[object, Session, VcpuThreads],
) -> None:
    vm, s, _ = vmm
    assert runs_on(vm, 1, slot(vm, 1)), "the VMM's threads run the guest before anyone attaches"
    ev = s.attach()
    assert ev.reason.kind is StopKind.INTERRUPT
    held = (pcs(vm), slot(vm, 0), slot(vm, 1))
    time.sleep(0.05)
    assert (pcs(vm), slot(vm, 0), slot(vm, 1)) == held, "a parked vCPU ran"
    s.detach()
    assert runs_on(vm, 0, held[1]) and runs_on(vm, 1, held[2]), "detach lets them run on"


def test_breakpoints_steps_and_all_stop_through_the_ports(
    vmm: tuple[object, Session, VcpuThreads],
) -> None:
    vm, s, _ = vmm
    s.attach()
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SYM["private_bp"], 4))  # only vCPU 1 passes
    s.resume({0: ResumeAction(), 1: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and (ev.vcpu, ev.reason.kind) == (1, StopKind.SW_BREAK)
    held = pcs(vm)
    time.sleep(0.05)
    assert pcs(vm) == held, "all-stop: vCPU 0 was stopped too"
    s.resume({1: ResumeAction(step=True)})  # vCPU 0 stays parked
    ev = s.wait_stop(10)
    assert ev is not None and (ev.vcpu, ev.reason.kind) == (1, StopKind.STEP)
    assert ev.reason.pc == SYM["private_bp"] + 4
    assert pcs(vm)[0] == held[0]
    s.resume({0: ResumeAction(), 1: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.pc == SYM["private_bp"]  # the next pass, no hit lost
    s.detach()


def test_an_attach_the_vmms_threads_never_answer_fails_and_the_vm_runs_on() -> None:
    """The VMM's thread runs KVM_RUN without calling its port: attach kicks it, waits
    ``attach_timeout`` for it to park, then gives up with the reason; nothing is left half
    attached and the guest runs on."""
    vm = make_vm(GUEST, smp=1)
    s = Session(vm, "e500mc", vcpu_threads="vmm", attach_timeout=0.3)  # type: ignore[arg-type]
    quit = threading.Event()
    v = vm.vcpus[0]  # type: ignore[attr-defined]

    def naive() -> None:
        while not quit.is_set():
            v.run()

    t = threading.Thread(target=naive, daemon=True)
    t.start()
    try:
        started = time.monotonic()
        with pytest.raises(NotStopped, match=r"vCPU\(s\) \[0\] did not stop within 0.3 s"):
            s.attach()
        assert time.monotonic() - started < 10  # gave up, did not block (a guard, not a timing)
        assert not s.attached
        assert runs_on(vm, 0, slot(vm, 0))
    finally:
        quit.set()
        s.close()
        v.kick()
        t.join(5)


def test_a_second_session_on_one_vm_is_refused_until_the_first_closes() -> None:
    vm = make_vm(GUEST, smp=1)
    s = Session(vm, "e500mc")  # type: ignore[arg-type]
    try:
        with pytest.raises(InvalidRequest, match="already has a debug session"):
            Session(vm, "e500mc", vcpu_threads="vmm")  # type: ignore[arg-type]
    finally:
        s.close()
    Session(vm, "e500mc").close()  # type: ignore[arg-type]
