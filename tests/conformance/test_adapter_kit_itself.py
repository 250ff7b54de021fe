"""The adapter kit fails adapters that break ``/dev/kvm``'s semantics, and loads as a VMM uses it.

A VMM's test file is run by a real pytest in a subprocess (JUnit XML says which test passed or
failed and why). Each deliberately broken adapter wraps the emulated x86-64 host's VM and breaks
one thing: a kick that arrives 3 s late, a KVM_RUN that clears ``immediate_exit`` before
entering, a KVM_GET_REGS served from a copy without waiting for KVM_RUN, a KVM_SET_REGS that pads
or cuts any size to fit, a ``read_phys`` that clamps at the end of RAM, a ``write_phys`` that
writes the part inside RAM before refusing. The same wrapper with nothing broken passes the same
checks, so every failure is the breakage's. A class without a profile fails saying so, and a
profile that cannot run here is skipped with its reason.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .pytest_runs import junit_outcomes, package_env

HERE = Path(__file__).resolve().parent

BROKEN = """
import dataclasses
import sys
import threading

sys.path.insert(0, HERE)

import adapter_profiles

from guestdbg.errors import BadAddress
from guestdbg.testing import AdapterConformance, AdapterUnavailable
from guestdbg_x86 import abi

END = adapter_profiles.X86_RAM
IMMEDIATE_EXIT = abi.layout().field("struct kvm_run", "immediate_exit")


class Vcpu:
    \"\"\"The emulated vCPU, unchanged; subclasses break one thing.\"\"\"

    def __init__(self, inner):
        self.inner = inner

    vcpu_id = property(lambda self: self.inner.vcpu_id)
    kvm_run = property(lambda self: self.inner.kvm_run)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class Vm:
    def __init__(self, inner, vcpu_class):
        self.inner = inner
        self._vcpus = [vcpu_class(v) for v in inner.vcpus]

    layout = property(lambda self: self.inner.layout)
    vcpus = property(lambda self: list(self._vcpus))

    def __getattr__(self, name):
        return getattr(self.inner, name)


def wrapped(vcpu_class=Vcpu, vm_class=Vm):
    def profile():
        base = adapter_profiles.emulated_x86()
        return dataclasses.replace(
            base, make_vm=lambda: vm_class(base.make_vm(), vcpu_class), arch=None
        )

    return profile


class KickArrivesLate(Vcpu):
    def kick(self):
        threading.Timer(3.0, self.inner.kick).start()


class IgnoresImmediateExit(Vcpu):
    def run(self):
        IMMEDIATE_EXIT.put(self.inner.kvm_run, 0)
        return self.inner.run()


class GetRegsDoesNotWait(Vcpu):
    def __init__(self, inner):
        super().__init__(inner)
        self.copy = inner.get_regs()
        self.running = False

    def run(self):
        self.running = True
        try:
            return self.inner.run()
        finally:
            self.running = False
            self.copy = self.inner.get_regs()

    def get_regs(self):
        return bytearray(self.copy) if self.running else self.inner.get_regs()


class AcceptsAnySize(Vcpu):
    def set_regs(self, regs):
        size = len(self.inner.get_regs())
        self.inner.set_regs(bytes(regs[:size]).ljust(size, b"\\0"))


class ClampsReads(Vm):
    def read_phys(self, gpa, size):
        if gpa < END:
            size = min(size, END - gpa)
        return self.inner.read_phys(gpa, size)


class WritesWhatFits(Vm):
    def write_phys(self, gpa, data):
        inside = data[: max(0, END - gpa)]
        if inside:
            self.inner.write_phys(gpa, inside)
        if len(inside) < len(data):
            raise BadAddress(f"{gpa:#x}+{len(data):#x} leaves RAM")


class Fast:
    kick_timeout = 1.0


class TestCorrectWrapper(Fast, AdapterConformance):
    profile = wrapped()


class TestKickArrivesLate(Fast, AdapterConformance):
    profile = wrapped(KickArrivesLate)


class TestIgnoresImmediateExit(Fast, AdapterConformance):
    profile = wrapped(IgnoresImmediateExit)


class TestGetRegsDoesNotWait(Fast, AdapterConformance):
    profile = wrapped(GetRegsDoesNotWait)


class TestAcceptsAnySize(Fast, AdapterConformance):
    profile = wrapped(AcceptsAnySize)


class TestClampsReads(Fast, AdapterConformance):
    profile = wrapped(vm_class=ClampsReads)


class TestWritesWhatFits(Fast, AdapterConformance):
    profile = wrapped(vm_class=WritesWhatFits)


def unavailable():
    raise AdapterUnavailable("this machine has no frobnicator")


class TestUnavailable(AdapterConformance):
    profile = unavailable


class TestNoProfile(AdapterConformance):
    pass
"""

SELECTED = {
    "kick_before": "test_a_kick_before_kvm_run_makes_it_return_exit_intr_at_once",
    "immediate_exit": "test_immediate_exit_set_by_the_vmm_returns_exit_intr_without_running",
    "running": "test_a_kick_from_another_thread_ends_a_running_kvm_run_and_only_that_one",
    "waits": "test_a_vcpu_ioctl_from_another_thread_waits_for_kvm_run",
    "regs": "test_regs_round_trip_a_written_pc_reads_back_and_wrong_sizes_are_refused",
    "ram": "test_accesses_leaving_ram_are_bad_address_and_write_nothing",
    "protocol": "test_vm_and_vcpus_implement_the_protocol",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("adapter-kit")
    (tmp / "test_vmm_adapters.py").write_text(f"HERE = {str(HERE)!r}\n" + textwrap.dedent(BROKEN))
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    args += ["-k", " or ".join(SELECTED.values()), f"--junitxml={tmp / 'report.xml'}"]
    args += ["--rootdir", str(tmp), str(tmp)]
    out = subprocess.run(
        args, cwd=tmp, capture_output=True, text=True, timeout=600, env=package_env()
    )
    return junit_outcomes(tmp / "report.xml", out.stdout + out.stderr)


def _failed(runs: dict[str, tuple[str, str]], cls: str, test: str, says: str) -> None:
    outcome, message = runs[f"{cls}::{SELECTED[test]}"]
    assert outcome == "failed", (cls, test, outcome, message)
    assert says in message, message


def test_the_same_wrapper_with_nothing_broken_passes(runs: dict[str, tuple[str, str]]) -> None:
    mine = {k: v for k, v in runs.items() if k.startswith("TestCorrectWrapper::")}
    assert len(mine) == len(SELECTED), mine
    assert {v[0] for v in mine.values()} == {"passed"}, mine


def test_a_late_kick_fails_the_kick_checks(runs: dict[str, tuple[str, str]]) -> None:
    for test in ("kick_before", "running"):
        _failed(runs, "TestKickArrivesLate", test, "did not return within 1.0s of a kick")
    # a check that never kicks a running vCPU is not failed by it
    assert runs[f"TestKickArrivesLate::{SELECTED['regs']}"][0] == "passed"


def test_a_kvm_run_ignoring_immediate_exit_fails_both_immediate_exit_checks(
    runs: dict[str, tuple[str, str]],
) -> None:
    _failed(runs, "TestIgnoresImmediateExit", "kick_before", "the kick before KVM_RUN was lost")
    _failed(runs, "TestIgnoresImmediateExit", "immediate_exit", "KVM_RUN ignored immediate_exit")
    # the signal half of the kick still works
    assert runs[f"TestIgnoresImmediateExit::{SELECTED['running']}"][0] == "passed"


def test_get_regs_not_waiting_for_kvm_run_fails_the_mutex_check(
    runs: dict[str, tuple[str, str]],
) -> None:
    _failed(
        runs,
        "TestGetRegsDoesNotWait",
        "waits",
        "KVM_GET_REGS from another thread returned while KVM_RUN was running",
    )


def test_set_regs_accepting_any_size_fails_the_regs_check(
    runs: dict[str, tuple[str, str]],
) -> None:
    _failed(runs, "TestAcceptsAnySize", "regs", "KVM_SET_REGS of 0 bytes was accepted")


def test_a_clamping_read_phys_fails_the_ram_check(runs: dict[str, tuple[str, str]]) -> None:
    _failed(
        runs, "TestClampsReads", "ram", "running past RAM's end was accepted (returned 4 bytes)"
    )


def test_a_write_phys_writing_what_fits_fails_the_ram_check(
    runs: dict[str, tuple[str, str]],
) -> None:
    _failed(runs, "TestWritesWhatFits", "ram", "wrote the part inside RAM")


def test_an_adapter_this_machine_cannot_run_is_skipped_with_its_reason(
    runs: dict[str, tuple[str, str]],
) -> None:
    mine = {k: v for k, v in runs.items() if k.startswith("TestUnavailable::")}
    assert len(mine) == len(SELECTED), mine
    assert all(
        o == "skipped" and "this machine has no frobnicator" in m for o, m in mine.values()
    ), mine


def test_a_class_without_a_profile_fails_saying_so(runs: dict[str, tuple[str, str]]) -> None:
    outcome, message = runs[f"TestNoProfile::{SELECTED['protocol']}"]
    assert outcome in ("failed", "error"), (outcome, message)
    assert "must name its profile" in message, message


def test_the_base_class_is_never_collected(runs: dict[str, tuple[str, str]]) -> None:
    assert not [k for k in runs if k.startswith("AdapterConformance::")]
