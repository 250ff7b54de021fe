"""The engines' translated-code buffer is bounded, and running on after it filled up is exact.

Arming and disarming an instruction breakpoint retranslates the blocks around it into fresh
buffer space; only a full flush reclaims it. Unbounded (Unicorn's 1 GiB default) that grew the
VMM process for as long as a debugger toggled breakpoints (``bench/soak.py`` found it). These
tests pin the bound and check that the flushes it causes do not disturb the model: every block
translated after a flush must still carry Unicorn's instruction counter, or a step never returns
and a slice overruns.
"""

from __future__ import annotations

import pytest

from guestdbg.emuhost import unicorn as ucc
from guestdbg.emuhost.memory import GuestMemory
from guestdbg_booke.emuhost.engine import Engine, StopKind

LOOP = 0x1000
ADDI_R3_1 = 0x38630001
B_BACK_8 = 0x4BFFFFF8  # b LOOP from LOOP + 8
MSR_PR = 0x4000


def successor(pc: int) -> int:
    return LOOP if pc == LOOP + 8 else pc + 4


def addis_from(pc: int, to: int) -> int:
    """How many ``addi`` the loop executes from ``pc`` until it reaches ``to``."""
    count = 0
    while True:
        count += pc != LOOP + 8
        pc = successor(pc)
        if pc == to:
            return count


def engine(ram_size: int = 0x10000) -> Engine:
    ram = GuestMemory("big")
    ram.add_slot(0, ram_size)
    ram.write(LOOP, b"".join(w.to_bytes(4, "big") for w in (ADDI_R3_1, ADDI_R3_1, B_BACK_8)))
    return Engine("e500mc", ram)


def test_every_engine_gets_the_bounded_buffer() -> None:
    assert engine().uc.ctl_get_tcg_buffer_size() == ucc.TCG_BUFFER_SIZE
    assert ucc.TCG_BUFFER_SIZE < 1 << 30  # Unicorn's own default is 1 GiB


def test_breakpoint_churn_through_many_full_flushes_stays_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the smallest buffer Unicorn accepts (1 MiB), thousands of exit changes flush it
    several times; each run must still stop exactly at the armed address, and each step must
    execute exactly one instruction, so the loop's count is exact."""
    monkeypatch.setattr(ucc, "TCG_BUFFER_SIZE", 1 << 20)
    eng = engine()
    assert eng.uc.ctl_get_tcg_buffer_size() == 1 << 20
    pc, expected = LOOP, 0

    def step() -> None:  # over the armed address, as the model steps over an IAC
        nonlocal pc, expected
        stop = eng.run(pc, MSR_PR, step=True, pass_exit=pc)
        assert stop.kind is StopKind.STEP and stop.pc == successor(pc), (n, stop)
        expected += pc != LOOP + 8
        pc = stop.pc

    for n in range(3000):
        at = LOOP + 4 * (n % 2)  # alternate between the two addi: each change retranslates
        eng.set_code_breaks([at])
        if pc == at:
            step()
        stop = eng.run(pc, MSR_PR, step=False)
        assert stop.kind is StopKind.CODE_BREAK and stop.pc == at, (n, stop)
        expected += addis_from(pc, at)
        pc = at
        if n % 500 == 0:
            step()
    assert eng.gpr(3) == expected
