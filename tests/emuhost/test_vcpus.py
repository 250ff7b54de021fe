"""Several vCPUs over one guest memory, each run from its own thread, and kicks out of KVM_RUN
from another thread (the signal a VMM sends a vCPU thread)."""

from __future__ import annotations

import threading
import time

from guestdbg.kvm.constants import KVM_EXIT_INTR

from .machine import L, Machine

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def run_in_thread(m: Machine, vcpu: int) -> tuple[threading.Thread, dict[str, int]]:
    out: dict[str, int] = {}

    def body() -> None:
        out["value"] = m.run_to_done(vcpu)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, out


def test_vcpus_start_together_tell_themselves_apart_by_pir_and_share_memory(core: str) -> None:
    # every vCPU starts at the entry (QEMU would hold the secondaries in the spin table);
    # vCPU 1 waits for a word vCPU 0 stores, both running at once
    m = Machine("smp", core, smp=2)
    t1, out1 = run_in_thread(m, 1)
    t0, out0 = run_in_thread(m, 0)
    t0.join(10)
    t1.join(10)
    assert not t0.is_alive() and not t1.is_alive()
    assert (out0["value"], out1["value"]) == (0, 0x12345678)


def test_a_kick_from_another_thread_ends_kvm_run_with_exit_intr(core: str) -> None:
    m = Machine("spin", core)
    result: dict[str, int] = {}
    t = threading.Thread(target=lambda: result.update(r=m.vcpu.run()), daemon=True)
    t.start()
    while not m.vcpu.in_run and t.is_alive():
        time.sleep(0.001)
    m.vcpu.kick()
    t.join(10)
    assert result["r"] == KVM_EXIT_INTR
    assert L.field("struct kvm_run", "exit_reason").get(m.vcpu.kvm_run) == KVM_EXIT_INTR
    assert m.pc in (m.sym["_start"], m.sym["spin"], m.sym["spin"] + 4)  # a clean stop


def test_kicks_racing_the_start_of_kvm_run_are_never_lost(core: str) -> None:
    # a kick that lands as KVM_RUN starts is seen by it (immediate_exit) or by its first poll
    m = Machine("spin", core)
    for _ in range(20):
        t = threading.Thread(target=m.vcpu.run, daemon=True)
        t.start()
        m.vcpu.kick()
        t.join(10)
        assert not t.is_alive()


def test_a_kick_before_kvm_run_makes_the_next_run_return_at_once(core: str) -> None:
    m = Machine("spin", core)
    m.vcpu.kick()
    assert m.vcpu.run() == KVM_EXIT_INTR
    assert m.pc == m.sym["_start"]


def test_immediate_exit_returns_exit_intr_without_running(core: str) -> None:
    m = Machine("spin", core)
    L.field("struct kvm_run", "immediate_exit").put(m.vcpu.kvm_run, 1)
    assert m.vcpu.run() == KVM_EXIT_INTR
    assert m.pc == m.sym["_start"]
