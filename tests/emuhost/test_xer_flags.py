"""XER read where Unicorn keeps it (``guestdbg_booke.emuhost.xer_flags``) rather than by an
``mfxer`` stub run: checked against ``mfxer`` itself on every core, after the guest's own
instructions set the flags and for random values; an engine where anything was not found, or
where the check fails, keeps the stub and gives the same answers."""

from __future__ import annotations

import random

import pytest

from guestdbg.emuhost.memory import GuestMemory
from guestdbg.emuhost.unicorn import EngineError
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


def test_the_guests_own_flags_are_read_where_unicorn_keeps_them() -> None:
    """The flags the guest's addic/addo set (no stub wrote them) are seen."""
    m = Machine("regs_mirror", "e500mc")
    assert m.vcpu.engine._xer_read is not None
    run_to(m, HOSTIO_CHECKPOINT)
    assert L.field(REGS, "xer").get(m.vcpu.get_regs()) == 0xE0000000


def test_an_engine_whose_reader_disagrees_keeps_the_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout with a wrong word for CA (as a changed Unicorn build could give) is never
    used: the value checks catch it."""
    found = xer_flags._layouts.get(32)
    assert found is not None
    wrong = xer_flags._Layout(found.hints, found.xer, found.so, found.ov, found.ov)
    monkeypatch.setattr(xer_flags, "_layouts", {32: wrong})
    eng = engine("e500mc")
    assert eng._xer_read is None
    eng._mtxer(0x20000003)
    eng._xer = None
    assert eng.xer() == 0x20000003


def test_an_engine_where_nothing_was_found_keeps_the_stub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Unicorn build where the GPR pattern leads nowhere (a failure this build cannot be made
    to show: the search itself is replaced)."""

    def nowhere(*_: object) -> object:
        raise EngineError("the pattern is reachable at 0 places, not one")

    monkeypatch.setattr(xer_flags, "_layouts", {})
    monkeypatch.setattr(xer_flags, "find_reachable", nowhere)
    eng = engine("e500mc")
    assert eng._xer_read is None
    assert xer_flags._layouts == {32: None}
    eng._mtxer(0xA0000011)
    eng._xer = None
    assert eng.xer() == 0xA0000011
