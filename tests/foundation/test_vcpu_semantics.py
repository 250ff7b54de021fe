"""The vCPU fd's run/kick/lock semantics, stated once and checked on every host: the emulated
e500mc and x86-64 hosts (both on :mod:`guestdbg.emuhost.vcpu`) and this machine's /dev/kvm.

What the kernel does (``virt/kvm/kvm_main.c kvm_vcpu_ioctl``, the arch's
``kvm_arch_vcpu_ioctl_run``): every vCPU ioctl holds ``vcpu->mutex``, so one from another thread
waits while KVM_RUN runs, and so does a second KVM_RUN; ``immediate_exit`` makes KVM_RUN return
-EINTR before entering the guest; a signal ends a running KVM_RUN with KVM_EXIT_INTR before the
next guest instruction. A kick is ``immediate_exit`` plus that signal.
"""

from __future__ import annotations

import pathlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from emuhost.machine import BUILD as PPC_BUILD
from emuhost.machine import Machine as BookeMachine
from x86 import machines

from guestdbg.emuhost.image import symbols
from guestdbg.kvm import constants as C
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.vcpu import VcpuHandle
from guestdbg_booke import abi as booke_abi
from guestdbg_booke.emuhost import EmulatedBookeVm
from guestdbg_booke.guests import build as booke_build

HOSTS = ("e500mc-emulated", "x86-emulated", "x86-kvm")
WAIT = 10.0
PRECISE_PPC = pathlib.Path(__file__).resolve().parents[1] / "e2e" / "guests" / "precise_stop.S"


@dataclass
class Host:
    """One vCPU on one host, at the start of a guest: ``spin`` (runs forever) or ``precise``
    (precise_stop.S of its arch: a loop whose state tells where it stopped)."""

    vcpu: VcpuHandle
    layout: AbiLayout
    pc_name: str
    sym: dict[str, int]
    read_phys: Callable[[int, int], bytes]
    close: Callable[[], None]

    def reg(self, *path: str | int) -> int:
        return int(self.layout.field("struct kvm_regs", *path).get(self.vcpu.get_regs()))

    @property
    def pc(self) -> int:
        return self.reg(self.pc_name)

    def run_field(self, name: str) -> int:
        return int(self.layout.field("struct kvm_run", name).get(self.vcpu.kvm_run))

    @property
    def in_run(self) -> bool:
        return bool(getattr(self.vcpu, "in_run"))  # noqa: B009  (KvmVcpu and EmulatedVcpu)


def _booke(guest: str) -> Host:
    if guest == "spin":
        m = BookeMachine("spin", "e500mc")
        vm, vcpu, sym = m.vm, m.vcpu, m.sym
    else:
        elf = booke_build(PRECISE_PPC, PPC_BUILD)
        vm = EmulatedBookeVm("e500mc")
        vm.load_elf(elf)
        vcpu, sym = vm.emulated_vcpus[0], symbols(elf)
    return Host(vcpu, booke_abi.layout(), "pc", sym, vm.read_phys, lambda: None)


def _x86(kind: str, guest: str, out: pathlib.Path) -> Host:
    if guest == "spin":
        elf = machines.build("reinject", out)
    else:
        elf = machines.build("precise_stop", out)
    m = machines.emulated(elf) if kind == "x86-emulated" else machines.real(elf)
    if guest == "spin":
        m.start_at("spin")
    return Host(m.vcpu, machines.LAYOUT, "rip", dict(m.image.symbols), m.vm.read_phys, m.close)


@pytest.fixture(params=HOSTS)
def make(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Callable[[str], Host]]:
    kind: str = request.param
    if kind == "x86-kvm" and (reason := machines.kvm_unusable()) is not None:
        pytest.skip(reason)
    made: list[Host] = []

    def make_host(guest: str) -> Host:
        h = _booke(guest) if kind == "e500mc-emulated" else _x86(kind, guest, tmp_path)
        made.append(h)
        return h

    yield make_host
    for h in made:
        h.close()


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # reported by the test's assertion on ``out``
            out.append(e)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, out


def _spinning(h: Host) -> tuple[threading.Thread, list[Any]]:
    """A thread inside KVM_RUN on ``h``'s spinning vCPU, and the list its result goes to."""
    runner, out = _in_thread(h.vcpu.run)
    _until(lambda: h.in_run)
    return runner, out


def _waiting(thread: threading.Thread, out: list[Any]) -> bool:
    """``thread`` has not returned after a while (it waits on the vCPU mutex)."""
    thread.join(0.2)
    return thread.is_alive() and out == []


def _until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < deadline, "the vCPU never got there"
        time.sleep(0.001)


def test_a_kick_before_kvm_run_makes_it_return_exit_intr_at_once(
    make: Callable[[str], Host],
) -> None:
    h = make("spin")
    pc = h.pc
    h.vcpu.kick()
    assert h.run_field("immediate_exit") == 1  # the kick's half for a thread about to enter
    assert h.vcpu.run() == C.KVM_EXIT_INTR
    assert (h.pc, h.run_field("exit_reason")) == (pc, C.KVM_EXIT_INTR)
    assert h.run_field("immediate_exit") == 0  # consumed by that one run


def test_immediate_exit_set_by_the_vmm_returns_exit_intr_without_running(
    make: Callable[[str], Host],
) -> None:
    h = make("spin")
    pc = h.pc
    h.layout.field("struct kvm_run", "immediate_exit").put(h.vcpu.kvm_run, 1)
    assert h.vcpu.run() == C.KVM_EXIT_INTR
    assert h.pc == pc


def test_a_kick_from_another_thread_ends_a_running_kvm_run(make: Callable[[str], Host]) -> None:
    h = make("spin")
    runner, out = _spinning(h)
    h.vcpu.kick()
    runner.join(WAIT)
    assert out == [C.KVM_EXIT_INTR]
    assert h.run_field("exit_reason") == C.KVM_EXIT_INTR
    assert h.run_field("immediate_exit") == 0


def test_an_ioctl_from_another_thread_waits_for_kvm_run_to_return(
    make: Callable[[str], Host],
) -> None:
    h = make("spin")
    runner, out = _spinning(h)
    reader, regs = _in_thread(h.vcpu.get_regs)
    try:
        assert _waiting(reader, regs), "KVM_GET_REGS did not wait for vcpu->mutex"
        assert h.in_run
    finally:
        h.vcpu.kick()
        runner.join(WAIT)
        reader.join(WAIT)
    assert out == [C.KVM_EXIT_INTR]
    assert len(regs) == 1 and regs[0] == h.vcpu.get_regs()  # the stopped vCPU's registers


def test_a_second_kvm_run_from_another_thread_waits_then_runs(
    make: Callable[[str], Host],
) -> None:
    h = make("spin")
    first, out1 = _spinning(h)
    second, out2 = _in_thread(h.vcpu.run)
    assert _waiting(second, out2), "the second KVM_RUN did not wait"
    h.vcpu.kick()  # reaches the thread inside KVM_RUN: the first
    first.join(WAIT)
    assert out1 == [C.KVM_EXIT_INTR]
    _until(lambda: h.in_run or not second.is_alive())
    assert out2 == [], "the kick meant for the first run ended the second"
    h.vcpu.kick()
    second.join(WAIT)
    assert out2 == [C.KVM_EXIT_INTR]


def test_a_kick_lands_between_two_instructions(make: Callable[[str], Host]) -> None:
    """Every stop of precise_stop's loop is at an instruction boundary: the state matches the
    instruction the PC is on, never one whose store is done with the PC still on it."""
    h = make("precise")
    regs, count = _precise_layout(h)
    rng = random.Random(7)
    wrong = []
    for _ in range(40):
        timer = threading.Timer(rng.uniform(0.0002, 0.003), h.vcpu.kick)
        timer.start()
        assert h.vcpu.run() == C.KVM_EXIT_INTR
        timer.join()
        a, b = (h.reg(*r) for r in regs)
        n = count()
        expected = {
            h.sym["hit"]: a == b + 1 and n == a - 1,
            h.sym["tail"]: a == b + 1 and n == a,
        }
        pc = h.pc
        if not expected.get(pc, a == b == n):  # elsewhere (loop, the branch back): all equal
            wrong.append((hex(pc), a, b, n))
    assert wrong == []


def _precise_layout(h: Host) -> tuple[tuple[tuple[str | int, ...], ...], Callable[[], int]]:
    """The two counters' register paths in ``kvm_regs`` and a reader of the count in memory."""
    if h.pc_name == "pc":  # PowerPC: r4, r5, a big-endian word
        order, size, regs = "big", 4, (("gpr", 4), ("gpr", 5))
    else:
        order, size, regs = "little", 8, (("r12",), ("r13",))
    addr = h.sym["count"]
    return regs, lambda: int.from_bytes(h.read_phys(addr, size), order)
