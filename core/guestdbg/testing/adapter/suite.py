"""The adapter conformance tests, as a pytest class a VMM subclasses with its profile.

Every test gets a fresh VM from the profile (``adapter_bench``), runs the guest only through the
protocol and frees the VM afterwards. The base class is not collected (``__test__ = False``);
every subclass is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from ...kvm.uapi import AbiLayout
from ...vcpu import DebugRegsHandle, VcpuEventsHandle, VcpuHandle, VmHandle
from ..collected import CollectedSubclasses
from . import attach, memory, running, state
from .bench import KICK_TIMEOUT, Bench
from .profile import AdapterProfile, AdapterUnavailable

_profiles: dict[Callable[[], AdapterProfile], AdapterProfile | str] = {}


def profile_of(factory: Callable[[], AdapterProfile]) -> AdapterProfile | str:
    """The factory's profile, made once per process, or why this machine cannot run it."""
    if factory not in _profiles:
        try:
            _profiles[factory] = factory()
        except AdapterUnavailable as e:
            _profiles[factory] = str(e)
    return _profiles[factory]


class AdapterConformance(CollectedSubclasses):
    """Subclass with ``profile = <a function returning an AdapterProfile>``."""

    profile: ClassVar[Callable[[], AdapterProfile]]
    """Called once per process (the result is cached); raising AdapterUnavailable skips the
    kit with its message."""
    kick_timeout: ClassVar[float] = KICK_TIMEOUT
    """Seconds a kicked KVM_RUN (or a single step) may take; only a hang takes them."""
    __test__: ClassVar[bool] = False

    @pytest.fixture
    def adapter_profile(self) -> AdapterProfile:
        factory = getattr(type(self), "profile", None)
        if not callable(factory):
            pytest.fail(
                f"{type(self).__name__} must name its profile: profile = <a function "
                "returning an AdapterProfile>",
                pytrace=False,
            )
        got = profile_of(factory)
        if isinstance(got, str):
            pytest.skip(got)
        return got

    @pytest.fixture
    def adapter_bench(self, adapter_profile: AdapterProfile) -> Iterator[Bench]:
        try:
            bench = Bench(adapter_profile, type(self).kick_timeout)
        except AdapterUnavailable as e:
            pytest.skip(str(e))
        try:
            yield bench
        finally:
            bench.close()

    # -- 1. the interface ------------------------------------------------------------------

    def test_vm_and_vcpus_implement_the_protocol(self, adapter_bench: Bench) -> None:
        vm = adapter_bench.vm
        assert isinstance(vm, VmHandle), f"{type(vm).__name__} does not implement VmHandle"
        assert isinstance(vm.layout, AbiLayout), "VmHandle.layout is not an AbiLayout"
        vcpus = vm.vcpus
        bad = [type(v).__name__ for v in vcpus if not isinstance(v, VcpuHandle)]
        assert not bad, f"{bad} do not implement VcpuHandle"
        ids = [v.vcpu_id for v in vcpus]
        assert all(type(i) is int and i >= 0 for i in ids), f"vcpu_ids {ids} are not ints >= 0"
        assert len(set(ids)) == len(ids), f"vcpu_ids repeat: {ids}"
        size = vm.layout.sizeof("struct kvm_run")
        for v in vcpus:
            run = v.kvm_run
            assert isinstance(run, memoryview), f"vCPU {v.vcpu_id}: kvm_run is not a memoryview"
            assert run.nbytes >= size and not run.readonly, (
                f"vCPU {v.vcpu_id}: kvm_run is {run.nbytes} bytes"
                f"{' read-only' if run.readonly else ''}; it must be a writable view of at "
                f"least sizeof(struct kvm_run) = {size}"
            )

    # -- 2. KVM_RUN, kicks and vcpu->mutex --------------------------------------------------

    def test_a_kick_before_kvm_run_makes_it_return_exit_intr_at_once(
        self, adapter_bench: Bench
    ) -> None:
        running.check_kick_before_run(adapter_bench)

    def test_immediate_exit_set_by_the_vmm_returns_exit_intr_without_running(
        self, adapter_bench: Bench
    ) -> None:
        running.check_immediate_exit(adapter_bench)

    def test_a_kick_from_another_thread_ends_a_running_kvm_run_and_only_that_one(
        self, adapter_bench: Bench
    ) -> None:
        running.check_kick_ends_a_running_run(adapter_bench)

    def test_a_vcpu_ioctl_from_another_thread_waits_for_kvm_run(self, adapter_bench: Bench) -> None:
        running.check_ioctls_wait_for_run(adapter_bench)

    def test_a_second_kvm_run_waits_for_the_first_then_runs(self, adapter_bench: Bench) -> None:
        running.check_second_run_waits(adapter_bench)

    # -- 3. guest debug ----------------------------------------------------------------------

    def test_set_guest_debug_takes_the_layouts_struct_and_refuses_other_sizes(
        self, adapter_bench: Bench
    ) -> None:
        state.check_guest_debug_sizes(adapter_bench)

    def test_single_step_exits_with_kvm_exit_debug_and_moves_the_pc(
        self, adapter_bench: Bench
    ) -> None:
        state.check_single_step(adapter_bench)

    # -- 4. registers --------------------------------------------------------------------------

    def test_regs_round_trip_a_written_pc_reads_back_and_wrong_sizes_are_refused(
        self, adapter_bench: Bench
    ) -> None:
        state.check_regs_round_trip(adapter_bench)

    def test_sregs_round_trip_and_wrong_sizes_are_refused(self, adapter_bench: Bench) -> None:
        state.check_sregs_round_trip(adapter_bench)

    def test_one_reg_of_an_undefined_id_is_a_kernel_error(self, adapter_bench: Bench) -> None:
        state.check_one_reg_unknown(adapter_bench)

    def test_vcpu_events_round_trip_where_offered(self, adapter_bench: Bench) -> None:
        vcpu, layout = adapter_bench.vcpu, adapter_bench.layout
        if not isinstance(vcpu, VcpuEventsHandle):
            pytest.skip(
                "the vCPU does not implement VcpuEventsHandle"
                + (
                    " (the x86 plugin refuses a Session on it)"
                    if "KVM_GET_VCPU_EVENTS" in layout.ioctls
                    else ""
                )
            )
        state.check_structure_round_trip(
            vcpu.get_vcpu_events,
            vcpu.set_vcpu_events,
            layout.sizeof("struct kvm_vcpu_events"),
            "VCPU_EVENTS",
        )

    def test_debugregs_round_trip_where_offered(self, adapter_bench: Bench) -> None:
        vcpu, layout = adapter_bench.vcpu, adapter_bench.layout
        if not isinstance(vcpu, DebugRegsHandle):
            pytest.skip("the vCPU does not implement DebugRegsHandle")
        db0 = layout.field("struct kvm_debugregs", "db", 0)
        state.check_structure_round_trip(
            vcpu.get_debugregs,
            vcpu.set_debugregs,
            layout.sizeof("struct kvm_debugregs"),
            "DEBUGREGS",
            change=lambda regs: db0.put(regs, db0.get(regs) ^ 0x1000),
        )

    # -- 5. memory and the VM fd --------------------------------------------------------------

    def test_translate_maps_the_pc_into_ram_and_an_unmapped_address_to_none(
        self, adapter_bench: Bench
    ) -> None:
        memory.check_translate(adapter_bench)

    def test_guest_ram_round_trips_through_read_phys_and_write_phys(
        self, adapter_bench: Bench
    ) -> None:
        memory.check_ram_round_trip(adapter_bench)

    def test_accesses_leaving_ram_are_bad_address_and_write_nothing(
        self, adapter_bench: Bench
    ) -> None:
        memory.check_outside_ram(adapter_bench)

    def test_check_extension_answers_ints(self, adapter_bench: Bench) -> None:
        memory.check_extension(adapter_bench)

    def test_enable_cap_of_an_unknown_capability_is_a_kernel_error(
        self, adapter_bench: Bench
    ) -> None:
        memory.check_enable_cap_unknown(adapter_bench)

    # -- 6. guestdbg on top ------------------------------------------------------------------

    def test_a_session_attaches_steps_vcpu_0_and_detaches(
        self, adapter_profile: AdapterProfile, adapter_bench: Bench
    ) -> None:
        if adapter_profile.arch is None:
            pytest.skip("the profile names no arch for a Session")
        attach.check_session_step(adapter_bench, adapter_profile.arch)
