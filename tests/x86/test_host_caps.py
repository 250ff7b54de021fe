"""Capabilities as the host really delivers them (issue 17).

On this machine's kvm_pvm ``/dev/kvm`` an ``int3`` at guest CPL0 ends KVM_RUN as an emulation
failure and data breakpoints never fire (docs/reference/this-machine-kvm.md); a session there
refuses both with the reason instead of leaving the guest stuck, because the x86 plugin probes
the host with a tiny VM of its own. On the emulated host everything is delivered. An exit the
debugger's own trap word causes is never handed to the device model. A VMM narrows the
capabilities itself with ``Session(limits=...)``.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from guestdbg.capabilities import CapabilityLimits
from guestdbg.errors import NoFreeSlot, UnsupportedByArch
from guestdbg.events import StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg_x86 import host_probe

from . import machines
from .machines import Machine
from .sessions import run_to_stop

MakeMachine = Callable[[str], Machine]


def _delivered(feature: str) -> bool:
    found = host_probe.probed().delivered(feature)
    assert found is not None, host_probe.probed()
    return found


def test_what_the_host_does_not_deliver_is_refused_with_the_reason(
    make_machine: MakeMachine,
) -> None:
    m = make_machine("reinject")
    s = Session(m.vm, "x86")
    try:
        code = m.vm.read_phys(m.sym("bp_start"), 16)
        sw = DebugPoint(PointKind.SW_BREAK, m.sym("bp_after_int3"))
        watch = DebugPoint(PointKind.WATCH_WRITE, m.sym("watched"), 4)
        if m.kind == "emulated" or _delivered("int3"):
            s.insert_point(sw)
        else:
            with pytest.raises(UnsupportedByArch, match="int3 at CPL0 as an emulation failure"):
                s.insert_point(sw)
            assert m.vm.read_phys(m.sym("bp_start"), 16) == code  # no trap word written
        if m.kind == "emulated" or _delivered("write watchpoint"):
            s.insert_point(watch)
        else:
            with pytest.raises(UnsupportedByArch, match="never fires data breakpoints"):
                s.insert_point(watch)
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("bp_done")))  # delivered on both
        if m.kind == "kvm" and not _delivered("int3"):
            assert [str(p) for p in s.points.all_points()] == [
                f"hwbreak mem:{m.sym('bp_done'):#x}/1"
            ]
            assert "refused swbreak: this kernel reports int3" in s.monitor("caps")
    finally:
        s.close()


def test_the_emulated_host_is_never_probed_and_refuses_nothing(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """A model of VMX: it delivers everything, and it is no /dev/kvm to probe."""
    m = machines.emulated(x86_guests("loop"))
    s = Session(m.vm, "x86")
    try:
        assert s.caps.refused == ()
    finally:
        s.close()


def test_a_vmm_narrows_what_the_debugger_gets(make_machine: MakeMachine) -> None:
    m = make_machine("reinject")
    limits = CapabilityLimits(
        refuse={PointKind.SW_BREAK: "guest code is in ROM here: use hbreak"}, hw_breakpoints=1
    )
    s = Session(m.vm, "x86", limits=limits)
    try:
        host_refuses = m.kind == "kvm" and not _delivered("int3")
        why = "emulation failure" if host_refuses else "guest code is in ROM here"
        with pytest.raises(UnsupportedByArch, match=why):  # the host's own reason comes first
            s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("bp_start")))
        s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("bp_start")))
        with pytest.raises(NoFreeSlot):
            s.insert_point(DebugPoint(PointKind.HW_BREAK, m.sym("bp_done")))
        assert f"refused swbreak: {'this kernel' if host_refuses else why}" in s.monitor("caps")
    finally:
        s.close()


@pytest.fixture
def trusting_probe() -> Iterator[None]:
    """The probe's verdict replaced by "everything delivered": a host that could not be
    probed and whose kernel guestdbg knows nothing about."""
    saved = dict(host_probe._cache)
    host_probe._cache["/dev/kvm"] = host_probe.ProbeResult("/dev/kvm", "kvm", (), 0.0)
    try:
        yield
    finally:
        host_probe._cache.clear()
        host_probe._cache.update(saved)


@pytest.mark.usefixtures("trusting_probe")
def test_an_exit_caused_by_the_debuggers_trap_word_never_reaches_the_device_model(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """On kvm_pvm an accepted int3 ends KVM_RUN as KVM_EXIT_INTERNAL_ERROR: a HALT for the
    debugger (with the reason, as a fault), never an exit for the VMM's device model."""
    reason = machines.kvm_unusable()
    if reason is not None:
        pytest.skip(reason)
    if _delivered_uncached("int3"):
        pytest.skip("this /dev/kvm reports int3 as a debug exit: no trap-word exit to claim")
    m = machines.real(x86_guests("reinject"))
    seen: list[int] = []

    def device_model(index: int, reason: int, run: memoryview) -> bool:
        seen.append(reason)
        return False

    m.start_at("bp_start")
    s = Session(m.vm, "x86", exit_handler=device_model)
    try:
        assert s.caps.refused == ()
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("bp_after_int3")))
        s.insert_point(DebugPoint(PointKind.SW_BREAK, m.sym("bp_start")))
        ev = run_to_stop(s)
        assert (ev.reason.kind, ev.reason.pc, ev.reason.fault) == (
            StopKind.HALT,
            m.sym("bp_start"),
            True,
        )
        assert "KVM_EXIT_INTERNAL_ERROR at the debugger's breakpoint" in ev.reason.why
        assert seen == []
    finally:
        s.close()
        m.close()


def _delivered_uncached(feature: str) -> bool:
    found = host_probe.probe().delivered(feature)
    return bool(found)


def test_plugins_probe_says_what_this_host_delivers() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "guestdbg", "plugins", "--probe"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "core e500mc" in out and "on this machine: cannot run" in out
    if machines.kvm_unusable() is not None:
        return
    assert "on this machine: /dev/kvm" in out and "probed in" in out, out
    assert "execute breakpoint at CPL0 (DR0, KVM_GUESTDBG_USE_HW_BP): delivered" in out, out
    if not _delivered("int3"):
        assert "int3 at CPL0 (KVM_GUESTDBG_USE_SW_BP): NOT delivered" in out, out
        assert "refused swbreak: this kernel reports int3 at CPL0 as an emulation" in out, out
    if not _delivered("write watchpoint"):
        assert "refused awatch, watch: this kernel never fires data breakpoints" in out, out


def test_a_kernel_without_use_sw_bp_gets_software_breakpoints_refused_by_its_own_word() -> None:
    from guestdbg_x86 import kernel_caps
    from guestdbg_x86.plugin import X86_CAPS

    said = kernel_caps.KernelCaps(kernel_caps.CLASSIC_CONTROL & ~0x10000, True, True, True)
    why = kernel_caps.debug_caps(X86_CAPS, said).refusal(PointKind.SW_BREAK)
    assert why is not None and "does not accept KVM_GUESTDBG_USE_SW_BP" in why


def test_a_host_that_cannot_be_probed_is_judged_by_what_is_known_of_its_kernel() -> None:
    unprobed = host_probe.ProbeResult("/dev/kvm", "kvm_pvm", (), 0.0, "open(/dev/kvm) failed")
    assert set(host_probe.refusals(unprobed)) == {
        PointKind.SW_BREAK,
        PointKind.WATCH_WRITE,
        PointKind.WATCH_READ,
        PointKind.WATCH_ACCESS,
    }
    other = host_probe.ProbeResult("/dev/kvm", "kvm_intel", (), 0.0, "open(/dev/kvm) failed")
    assert host_probe.refusals(other) == {}  # the kernel's word stands


def test_a_vmms_own_adapter_on_dev_kvm_is_recognised_by_its_vm_fd(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    """A raw-ioctl adapter is no KvmVm, but its VM fd says what it is."""
    from guestdbg.host_report import is_real_kvm

    if machines.kvm_unusable() is not None:
        pytest.skip(machines.kvm_unusable() or "")
    m = machines.real(x86_guests("loop"))
    try:

        class Adapter:
            fd = m.vm.fd  # type: ignore[attr-defined]

        assert is_real_kvm(m.vm) and is_real_kvm(Adapter())
        assert not is_real_kvm(machines.emulated(x86_guests("loop")).vm)

        class NotKvm:
            fd = 0  # stdin

        assert not is_real_kvm(NotKvm())
    finally:
        m.close()
