"""Unicorn's 64-bit PowerPC cores as the e5500/e6500 hosts use them: the CPU-table fix
(``guestdbg_booke.emuhost.cpu_table``) and a probe of what the fixed cores do
(``docs/reference/unicorn.md`` §10).

The fix is checked on the real library; the two failures it must refuse that this Unicorn cannot
produce (another table layout, a swap that does not take) go through an injected table, and an
unknown PVR through an injected probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from unicorn import ppc_const as ppc

from guestdbg.emuhost import unicorn as ucc
from guestdbg.emuhost.unicorn import EngineError
from guestdbg_booke.emuhost import cpu_table
from guestdbg_booke.emuhost.cpu_table import (
    BUGGY_PVR,
    EXPECTED_NAMES,
    FIRST_PPC64,
    PPC64_MODELS,
    PVR,
    ensure_ppc64_models,
    fix_cpu_table,
    probe_pvr,
)

CODE = 0x10000
MSR_PR = 1 << 14
MSR_CM = 1 << 31
MSR_VEC = 1 << 25


def test_e5500_and_e6500_models_read_qemus_pvrs_once_fixed() -> None:
    ensure_ppc64_models()
    assert {name: probe_pvr(model) for name, model in PPC64_MODELS.items()} == PVR


def test_the_fix_runs_once_a_second_call_looks_nothing_up() -> None:
    ensure_ppc64_models()

    lookups: list[None] = []

    def must_not_be_called() -> cpu_table.CpuTable:
        lookups.append(None)
        raise AssertionError("the table was looked up again")

    ensure_ppc64_models(lookup=must_not_be_called)
    assert lookups == []


class FakeTable:
    """A table of another Unicorn build, or one whose swap does not take."""

    where = "a fake table"

    def __init__(self, names: dict[int, str], pvrs: dict[int, int]) -> None:
        self.names = names
        self.pvrs = pvrs
        self.swaps: list[tuple[tuple[int, int], ...]] = []

    def name(self, index: int) -> str | None:
        return self.names.get(index)

    def pvr(self, index: int) -> int:
        return self.pvrs.get(index, 0)

    def swap(self, pairs: Sequence[tuple[int, int]]) -> None:
        self.swaps.append(tuple(pairs))


GOOD_PVRS = {FIRST_PPC64: PVR["e5500"], FIRST_PPC64 + 1: PVR["e6500"]}


def test_a_table_of_another_layout_is_refused_naming_what_it_holds_and_is_not_written() -> None:
    names = dict(EXPECTED_NAMES)
    names[FIRST_PPC64] = "970_v2.2"  # say, a build whose 64-bit models start elsewhere
    table = FakeTable(names, GOOD_PVRS)
    with pytest.raises(EngineError, match=r"970_v2\.2") as e:
        fix_cpu_table(table, probe=lambda model: BUGGY_PVR["e5500"])
    assert "nothing was changed" in str(e.value)
    assert table.swaps == []


def test_a_buggy_unicorn_with_another_table_is_refused_by_name_on_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the entry point: the probe says "the known bug", the table found is not the one
    guestdbg knows; the same error comes back later without another look."""
    monkeypatch.setattr(cpu_table, "_once", cpu_table._Once())
    names = dict(EXPECTED_NAMES)
    names[0] = "601_v0"
    tables = [FakeTable(names, GOOD_PVRS)]

    def lookup() -> cpu_table.CpuTable:
        return tables.pop()

    def buggy(model: int) -> int:
        return BUGGY_PVR["e5500" if model == PPC64_MODELS["e5500"] else "e6500"]

    for _ in range(2):
        with pytest.raises(EngineError, match="601_v0"):
            ensure_ppc64_models(lookup=lookup, probe=buggy)
    assert tables == []  # looked up once


def test_entries_with_other_pvrs_are_refused_and_not_written() -> None:
    table = FakeTable(dict(EXPECTED_NAMES), {FIRST_PPC64: 0x80240021})
    with pytest.raises(EngineError, match="0x80240021"):
        fix_cpu_table(table, probe=lambda model: 0)
    assert table.swaps == []


def test_a_swap_the_cores_do_not_follow_is_undone() -> None:
    table = FakeTable(dict(EXPECTED_NAMES), GOOD_PVRS)
    with pytest.raises(EngineError, match="undone"):
        fix_cpu_table(table, probe=lambda model: BUGGY_PVR["e5500"])
    assert len(table.swaps) == 2 and table.swaps[0] == table.swaps[1]


def test_a_unicorn_reading_an_unknown_pvr_is_an_error_every_time_not_a_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu_table, "_once", cpu_table._Once())
    looked_up: list[bool] = []

    def lookup() -> cpu_table.CpuTable:
        looked_up.append(True)
        raise AssertionError("no table may be looked up for an unknown Unicorn")

    for _ in range(2):
        with pytest.raises(EngineError, match="0x12345678"):
            ensure_ppc64_models(lookup=lookup, probe=lambda model: 0x12345678)
    assert looked_up == []


def test_concurrent_callers_probe_once_and_all_return(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repair is made under a lock: a second thread waits for the first one's answer instead
    of probing (or swapping) again."""
    monkeypatch.setattr(cpu_table, "_once", cpu_table._Once())
    probed: list[int] = []

    def slow_probe(model: int) -> int:
        probed.append(model)
        time.sleep(0.02)
        return probe_pvr(model)

    threads = [
        threading.Thread(target=ensure_ppc64_models, kwargs={"probe": slow_probe}) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(probed) == sorted(PPC64_MODELS.values())


# -- what the fixed cores do (the probe behind docs/reference/unicorn.md §10) -----------------


def _uc(core: str, words: Sequence[int], msr: int) -> Any:
    ensure_ppc64_models()
    uc = ucc.new_uc(ucc.UC_ARCH_PPC, ucc.UC_MODE_PPC64 | ucc.UC_MODE_BIG_ENDIAN)
    uc.ctl_set_cpu_model(PPC64_MODELS[core])
    uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
    uc.mem_map(0, 0x100000, ucc.UC_PROT_ALL)
    uc.mem_write(CODE, b"".join(w.to_bytes(4, "big") for w in words))
    uc.reg_write(ppc.UC_PPC_REG_MSR, msr)
    return uc


def _run(uc: Any, count: int) -> int | None:
    """The interrupt number the run raised (the hook stops it), or None."""
    seen: list[int] = []

    def on_intr(uc: Any, intno: int, _ud: object) -> None:
        seen.append(intno)
        uc.emu_stop()

    h = uc.hook_add(ucc.UC_HOOK_INTR, on_intr)
    try:
        uc.emu_start(CODE, 0xFFFFFFFF, count=count)
    finally:
        uc.hook_del(h)
    return seen[0] if seen else None


LI_R3_1 = 0x38600001
SLDI_R3_R3_40 = 0x786345C6  # rldicr r3,r3,40,23
STD_R3_0x100_R0 = 0xF8600100
LD_R4_0x100_R0 = 0xE8800100
ADDI_R3_R3_M1 = 0x3863FFFF


@pytest.mark.parametrize("core", PPC64_MODELS)
def test_64_bit_code_runs_in_user_mode_with_msr_cm_and_keeps_it(core: str) -> None:
    words = [LI_R3_1, SLDI_R3_R3_40, STD_R3_0x100_R0, LD_R4_0x100_R0, ADDI_R3_R3_M1]
    uc = _uc(core, words, MSR_PR | MSR_CM)
    assert _run(uc, len(words)) is None
    assert uc.reg_read(ppc.UC_PPC_REG_3) == (1 << 40) - 1
    assert uc.reg_read(ppc.UC_PPC_REG_4) == 1 << 40
    assert uc.reg_read(ppc.UC_PPC_REG_MSR) == MSR_PR | MSR_CM


@pytest.mark.parametrize("core", PPC64_MODELS)
@pytest.mark.parametrize(
    ("word", "intno"),
    [(0x7FE00008, 6), (0x44000002, 8), (0x7C6000A6, 6)],  # tw 31,0,0; sc; mfmsr r3
    ids=["tw", "sc", "mfmsr-in-user-mode"],
)
def test_traps_system_calls_and_privileged_instructions_raise_their_intno(
    core: str, word: int, intno: int
) -> None:
    uc = _uc(core, [word], MSR_PR | MSR_CM)
    assert _run(uc, 1) == intno
    assert uc.reg_read(ppc.UC_PPC_REG_PC) == CODE + 4  # docs/reference/unicorn.md §6


@pytest.mark.parametrize("core", PPC64_MODELS)
def test_a_count_1_run_executes_exactly_one_instruction(core: str) -> None:
    uc = _uc(core, [LI_R3_1, SLDI_R3_R3_40, ADDI_R3_R3_M1], MSR_PR | MSR_CM)
    assert _run(uc, 1) is None
    assert (uc.reg_read(ppc.UC_PPC_REG_PC), uc.reg_read(ppc.UC_PPC_REG_3)) == (CODE + 4, 1)
    uc.emu_start(CODE + 4, 0xFFFFFFFF, count=1)
    assert (uc.reg_read(ppc.UC_PPC_REG_PC), uc.reg_read(ppc.UC_PPC_REG_3)) == (CODE + 8, 1 << 40)


VADDUBM_V3_V1_V2 = 0x10611000


def test_e6500_runs_altivec_with_msr_vec_and_raises_73_without() -> None:
    uc = _uc("e6500", [VADDUBM_V3_V1_V2], MSR_PR | MSR_CM | MSR_VEC)
    assert _run(uc, 1) is None
    uc = _uc("e6500", [VADDUBM_V3_V1_V2], MSR_PR | MSR_CM)
    assert _run(uc, 1) == 73


def test_e5500_has_no_altivec_unit() -> None:
    uc = _uc("e5500", [VADDUBM_V3_V1_V2], MSR_PR | MSR_CM | MSR_VEC)
    assert _run(uc, 1) == 96  # an invalid opcode (docs/reference/unicorn.md §6)
