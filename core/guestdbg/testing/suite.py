"""The conformance tests, as a pytest class a porter subclasses with the arch's name.

Every test runs once per core the arch announces (``guestdbg_core_name``); the round trip runs
once per core and point kind (``guestdbg_point_spec``). The base class is not collected
(``__test__ = False``); every subclass is, whatever pytest's ``python_classes`` says, as long
as its name is collected. The fixtures are methods here, so a subclass works without
``pytest_plugins = ["guestdbg.testing"]``; with it, the same names come from the plugin and the
class's own win.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..arch import ArchInfo, CoreInfo
from ..errors import UnknownArch
from ..numbering import ExceptionId
from ..plugins import Registry
from ..points import PointKind
from ..session.session import Session
from . import announce, gdb_tdesc, limits, numberspaces, profile_fit, reinjection, roundtrip, tdesc
from .collected import CollectedSubclasses
from .profile import ConformanceProfile, ProfileUnavailable
from .resolve import arch_info, core_names, profile_for, registry_for
from .roundtrip import PointSpec
from .sessions import STOP_TIMEOUT, open_session

CORE_PARAM = "guestdbg_core_name"
POINT_PARAM = "guestdbg_point_spec"
UNANNOUNCED = "arch-not-announced"
"""The one core id of an arch no plugin announces: its tests fail, saying so."""


class ArchConformance(CollectedSubclasses):
    """Subclass with ``arch = "<name>"``; pytest then runs the whole kit on every core."""

    arch: ClassVar[str]
    """The arch's name as ``guestdbg_arch`` announces it."""
    extra_plugins: ClassVar[tuple[object, ...]] = ()
    """Plugin objects registered after the installed ones (they win ``firstresult`` hooks):
    e.g. a plugin under development, or a deliberately broken one the kit must fail."""
    stop_timeout: ClassVar[float] = STOP_TIMEOUT
    """Seconds a guest gets to reach an armed point before the check fails."""
    __test__: ClassVar[bool] = False

    # -- parametrization -------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        cls = type(self)
        arch = getattr(cls, "arch", None)
        if not isinstance(arch, str):
            raise TypeError(f'{cls.__name__} must name its arch: arch = "<name>"')
        registry = registry_for(cls.extra_plugins)
        infos = registry.arches.get(arch)
        cores = list(infos.cores) if infos is not None else []
        if POINT_PARAM in metafunc.fixturenames:
            pairs = [(c.name, spec) for c in cores for spec in roundtrip.point_specs(c.caps)]
            if not pairs:
                pairs = [(UNANNOUNCED, PointSpec(PointKind.SW_BREAK, 1))]
            metafunc.parametrize(
                (CORE_PARAM, POINT_PARAM), pairs, ids=[f"{c}-{s}" for c, s in pairs]
            )
        elif CORE_PARAM in metafunc.fixturenames:
            metafunc.parametrize(CORE_PARAM, core_names(registry, arch) or [UNANNOUNCED])

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def guestdbg_registry(self) -> Registry:
        return registry_for(type(self).extra_plugins)

    @pytest.fixture
    def conformance_arch(self, guestdbg_registry: Registry) -> ArchInfo:
        try:
            return arch_info(guestdbg_registry, type(self).arch)
        except LookupError as e:
            pytest.fail(str(e), pytrace=False)

    @pytest.fixture
    def conformance_core(self, conformance_arch: ArchInfo, guestdbg_core_name: str) -> CoreInfo:
        return conformance_arch.core(guestdbg_core_name)

    @pytest.fixture
    def conformance_profile(
        self, guestdbg_registry: Registry, conformance_arch: ArchInfo, conformance_core: CoreInfo
    ) -> ConformanceProfile:
        try:
            return profile_for(guestdbg_registry, conformance_arch, conformance_core)
        except ProfileUnavailable as e:
            pytest.skip(f"no profile for core {conformance_core.name!r} here: {e}")

    @pytest.fixture
    def conformance_session(
        self,
        guestdbg_registry: Registry,
        conformance_arch: ArchInfo,
        conformance_core: CoreInfo,
        conformance_profile: ConformanceProfile,
    ) -> Iterator[Session]:
        with open_session(
            guestdbg_registry, conformance_arch, conformance_core, conformance_profile
        ) as session:
            yield session

    # -- 1. announcement and capabilities ---------------------------------------------------

    def test_arch_is_announced_through_the_entry_point_group(
        self, conformance_arch: ArchInfo, guestdbg_core_name: str
    ) -> None:
        announce.entry_point_announcing(conformance_arch.name)
        problems = announce.arch_problems(conformance_arch)
        assert not problems, "; ".join(problems)

    def test_live_caps_are_self_consistent_and_within_the_listing(
        self, conformance_core: CoreInfo, conformance_session: Session
    ) -> None:
        problems = announce.live_caps_problems(conformance_core.caps, conformance_session.caps)
        assert not problems, "; ".join(problems)

    def test_unknown_core_is_refused_with_unknown_arch(
        self, guestdbg_registry: Registry, conformance_arch: ArchInfo, guestdbg_core_name: str
    ) -> None:
        announce.check_unknown_core_refused(guestdbg_registry, conformance_arch)
        with pytest.raises(UnknownArch):
            guestdbg_registry.resolve(f"{conformance_arch.name}-no-such-core")

    def test_profile_gives_the_kit_what_the_caps_need(
        self, conformance_profile: ConformanceProfile, conformance_session: Session
    ) -> None:
        announce.check_policy_known(conformance_profile.policy)
        problems = profile_fit.profile_problems(conformance_profile, conformance_session.caps)
        assert not problems, "; ".join(problems)
        assert not profile_fit.outside_ram_is_memory(conformance_session, conformance_profile), (
            f"outside_ram {conformance_profile.outside_ram:#x} is guest memory"
        )

    # -- 2. encode -> kernel -> decode ------------------------------------------------------

    def test_point_stops_the_guest_and_after_removal_no_longer_does(
        self,
        conformance_session: Session,
        conformance_profile: ConformanceProfile,
        guestdbg_point_spec: PointSpec,
    ) -> None:
        caps = conformance_session.caps
        if guestdbg_point_spec not in roundtrip.point_specs(caps):
            pytest.skip(f"this vCPU's kernel does not offer {guestdbg_point_spec} (listed only)")
        roundtrip.check_round_trip(
            conformance_session, conformance_profile, guestdbg_point_spec, self.stop_timeout
        )

    # -- 3. limits --------------------------------------------------------------------------

    def test_one_hw_break_more_than_the_slots_is_refused_and_nothing_changes(
        self, conformance_session: Session, conformance_profile: ConformanceProfile
    ) -> None:
        why_not = limits.check_one_break_too_many(
            conformance_session, conformance_profile, self.stop_timeout
        )
        if why_not:
            pytest.skip(why_not)

    def test_watch_kind_or_length_not_offered_is_refused_and_nothing_changes(
        self, conformance_session: Session, conformance_profile: ConformanceProfile
    ) -> None:
        limits.check_watch_not_offered(conformance_session, conformance_profile)

    def test_sw_break_outside_ram_is_refused_and_nothing_changes(
        self, conformance_session: Session, conformance_profile: ConformanceProfile
    ) -> None:
        limits.check_break_outside_ram(conformance_session, conformance_profile)

    def test_removing_an_unknown_point_is_refused_and_nothing_changes(
        self, conformance_session: Session, conformance_profile: ConformanceProfile
    ) -> None:
        limits.check_unknown_removal(conformance_session, conformance_profile)

    # -- 4. numberspaces --------------------------------------------------------------------

    def test_named_exceptions_convert_losslessly_or_raise_no_mapping(
        self, conformance_arch: ArchInfo, guestdbg_core_name: str
    ) -> None:
        table = conformance_arch.numbering
        for exc in numberspaces.named_exceptions(table):
            numberspaces.check_converts_losslessly(table, exc)

    # pytest makes a new instance per test (differing executors); no state lives on it.
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_any_exception_number_converts_losslessly_or_raises_no_mapping(
        self, conformance_arch: ArchInfo, guestdbg_core_name: str, data: st.DataObject
    ) -> None:
        table = conformance_arch.numbering
        space = data.draw(st.sampled_from(sorted(table.spaces)), label="space")
        number = data.draw(st.integers(min_value=0, max_value=0xFFFF), label="number")
        numberspaces.check_converts_losslessly(table, ExceptionId(space, number))

    # -- 5. target description --------------------------------------------------------------

    def test_target_description_parses_and_matches_the_g_packet(
        self, conformance_session: Session
    ) -> None:
        stub = tdesc.open_stub(conformance_session)
        _, regs = tdesc.parse_registers(tdesc.fetch_target_xml(stub))
        tdesc.check_matches_register_list(conformance_session.gdb_arch, regs)
        tdesc.check_g_reply(stub, regs)

    def test_real_gdb_lays_out_the_same_registers(self, conformance_session: Session) -> None:
        why_not = gdb_tdesc.why_not_installed()
        if why_not:
            pytest.skip(why_not)
        xml = tdesc.fetch_target_xml(tdesc.open_stub(conformance_session))
        architecture, regs = tdesc.parse_registers(xml)
        reading = gdb_tdesc.read_with_gdb(xml)
        why_not = gdb_tdesc.why_gdb_cannot_judge(reading, architecture)
        if why_not:
            pytest.skip(why_not)
        gdb_tdesc.check_gdb_agrees(reading, regs)

    # -- 6. reinjection ---------------------------------------------------------------------

    def test_guest_events_are_reinjected_as_documented_and_host_points_claim_them(
        self,
        conformance_arch: ArchInfo,
        conformance_profile: ConformanceProfile,
        conformance_session: Session,
    ) -> None:
        if not conformance_profile.guest_events:
            pytest.skip("the profile lists none of the guest's own debug events")
        ops = conformance_session.ops[0]
        layout = conformance_session.vm.layout
        table = conformance_arch.numbering
        for case in conformance_profile.guest_events:
            ev = reinjection.decode_case(ops, layout, case)
            reinjection.check_claimed(ops, case, ev)
            if case.expected is None:
                reinjection.check_dropped(ops, case, ev)
            else:
                reinjection.check_reinjected(ops, table, case, ev)

    def test_a_guest_event_verdict_is_injected_into_a_live_vcpu(
        self,
        conformance_arch: ArchInfo,
        conformance_profile: ConformanceProfile,
        conformance_session: Session,
    ) -> None:
        if not conformance_profile.guest_events:
            pytest.skip("the profile lists none of the guest's own debug events")
        ops = conformance_session.ops[0]
        layout = conformance_session.vm.layout
        injected = [c for c in conformance_profile.guest_events if c.expected is not None]
        if not injected:
            pytest.skip("the profile documents no guest event as re-injected")
        for case in injected:
            ev = reinjection.decode_case(ops, layout, case)
            verdict = reinjection.check_reinjected(ops, conformance_arch.numbering, case, ev)
            ops.inject(verdict)
