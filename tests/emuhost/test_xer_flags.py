"""XER read where Unicorn keeps it (``guestdbg_booke.emuhost.xer_flags``) rather than by an
``mfxer`` stub run: checked against ``mfxer`` itself on every core, after the guest's own
instructions set the flags and for random values; the shipped hints are what a search of
Unicorn's memory finds on this build; an engine where a hint or a field fails, or where the
check fails, keeps the stub and gives the same answers."""

from __future__ import annotations

import random

import pytest

from guestdbg.emuhost.memory import GuestMemory
from guestdbg.emuhost.unicorn import discover_reachable
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT, xer_flags
from guestdbg_booke.emuhost.engine import Engine

from .machine import CORES, CORES64, REGS, L, Machine
from .test_registers_as_guest_sees import run_to

ALL_CORES = (*CORES, *CORES64)


def engine(core: str) -> Engine:
    return Engine(core, GuestMemory("big"))


@pytest.mark.parametrize("model", ALL_CORES)
def test_the_reader_agrees_with_mfxer_on_random_values(model: str) -> None:
    eng = engine(model)
    read = eng._xer_read
    assert read is not None, "XER's parts were not found: every exit pays the mfxer stub"
    gprs = eng.gprs()
    rng = random.Random(model)
    for _ in range(300):
        # SO, OV, CA and the byte count: the XER bits e500 cores keep
        value = rng.getrandbits(3) << 29 | rng.getrandbits(7)
        eng._mtxer(value)
        assert (read(), eng._mfxer()) == (value, value)
    assert eng.gprs() == gprs, "the GPR pattern the search wrote was put back"


@pytest.mark.parametrize("model", ["e500mc", "e5500"])
def test_the_shipped_hints_are_what_a_search_of_unicorns_memory_finds(model: str) -> None:
    """If this fails after a Unicorn upgrade, the engines have fallen back to the stub (the
    other tests here say so too): put what the search found in ``xer_flags.HINTS``."""
    eng = engine(model)
    pattern, needle = xer_flags.pattern_bytes(eng.width)
    eng.set_gprs(pattern)
    found = discover_reachable(eng.uc, needle)
    assert set(xer_flags.HINTS[eng.width]) <= set(found), found


def test_the_guests_own_flags_are_read_where_unicorn_keeps_them() -> None:
    """The flags the guest's addic/addo set (no stub wrote them) are seen."""
    m = Machine("regs_mirror", "e500mc")
    assert m.vcpu.engine._xer_read is not None
    run_to(m, HOSTIO_CHECKPOINT)
    assert L.field(REGS, "xer").get(m.vcpu.get_regs()) == 0xE0000000


def test_an_engine_whose_reader_disagrees_keeps_the_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout with a wrong word for CA (as a changed Unicorn build could give) is never
    used: the value checks catch it."""
    engine("e500mc")
    found = xer_flags._layouts.get(32)
    assert found is not None
    wrong = xer_flags._Layout(found.xer, found.so, found.ov, found.ov)
    monkeypatch.setattr(xer_flags, "_layouts", {32: wrong})
    eng = engine("e500mc")
    assert eng._xer_read is None
    eng._mtxer(0x20000003)
    eng._xer = None
    assert eng.xer() == 0x20000003


def test_hints_that_lead_nowhere_keep_the_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another Unicorn build: the shipped hints point elsewhere (here, a hint at the right
    pointer but a distance off by a word, and one at an offset the structure does not have)."""
    (off, delta), *_ = xer_flags.HINTS[32]
    monkeypatch.setattr(xer_flags, "HINTS", {32: ((off, delta + 4), (9000, 0))})
    monkeypatch.setattr(xer_flags, "_layouts", {})
    eng = engine("e500mc")
    assert eng._xer_read is None
    eng._mtxer(0xA0000011)
    eng._xer = None
    assert eng.xer() == 0xA0000011
