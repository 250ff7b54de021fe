"""Exception numbers carry their numberspace; conversion is lossless or a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guestdbg.errors import InvalidRequest, NoMapping
from guestdbg.numbering import EquivalenceTable, ExceptionId, Numberspace
from guestdbg_booke import numbering as booke
from guestdbg_x86 import numbering as x86


def test_program_interrupt_in_every_booke_space() -> None:
    t = booke.TABLE
    assert t.convert(booke.PROGRAM, booke.IFO) == ExceptionId(booke.IFO, 0xE0)
    assert t.convert(booke.PROGRAM, booke.PRIO) == ExceptionId(booke.PRIO, 3)
    # kvm_asm.h BOOKE_INTERRUPT_DEBUG = 15; booke.h BOOKE_IRQPRIO_DEBUG = 13; debug sits at 0x040
    assert t.convert(ExceptionId(booke.PRIO, 13), booke.IVOR) == booke.DEBUG
    assert t.convert(booke.DEBUG, booke.IFO).number == 0x40


def test_missing_counterpart_is_no_mapping() -> None:
    with pytest.raises(NoMapping, match=r"SPE FP round.*booke.ifo"):
        booke.TABLE.convert(ExceptionId(booke.IVOR, 34), booke.IFO)
    with pytest.raises(NoMapping):
        booke.TABLE.convert(ExceptionId(booke.PRIO, 20), booke.IVOR)  # EXTERNAL_LEVEL pseudo prio
    with pytest.raises(NoMapping, match="unknown numberspace"):
        booke.TABLE.convert(booke.PROGRAM, x86.VECTOR)


@given(st.sampled_from(sorted(booke.TABLE.spaces)), st.integers(0, 0x400))
def test_conversion_round_trips_wherever_it_exists(space: str, number: int) -> None:
    exc = ExceptionId(space, number)
    for other in booke.TABLE.spaces:
        try:
            there = booke.TABLE.convert(exc, other)
        except NoMapping:
            continue
        assert booke.TABLE.convert(there, space) == exc


def test_a_table_that_would_lose_information_is_refused() -> None:
    spaces = [Numberspace("a", ""), Numberspace("b", "")]
    with pytest.raises(ValueError, match="two rows"):
        EquivalenceTable(spaces, [{"a": 1, "b": 2}, {"a": 1, "b": 3}])


def test_exception_id_json_round_trip_and_bad_documents() -> None:
    assert ExceptionId.from_json(booke.PROGRAM.to_json()) == booke.PROGRAM
    for bad in ({"space": 1, "number": 2}, {"space": "x"}, [], {"space": "x", "number": True}):
        with pytest.raises(InvalidRequest):
            ExceptionId.from_json(bad)


def test_x86_vectors_are_named() -> None:
    assert x86.TABLE.describe(x86.DB) == "x86.vector:#DB (0x1)"
