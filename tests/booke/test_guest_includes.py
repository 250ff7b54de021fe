"""The guest programs' SPR include says what guestdbg_booke.regs says (one source of truth
for the numbers, two languages)."""

from __future__ import annotations

import re
from pathlib import Path

from guestdbg_booke import regs

INC = Path(regs.__file__).parent / "guests" / "spr.inc"
DBCR0_HALVES = {"IDM": "DBCR0_IDM", "IC": "DBCR0_IC", "TIE": "DBCR0_TIE",
                "IAC1E": "DBCR0_IAC1", "DAC1W": "DBCR0_DAC1W"}  # fmt: skip


def test_spr_include_matches_the_kernel_names_in_regs() -> None:
    values = {n: int(v, 16) for n, v in re.findall(r"\.set (\w+), (0x[0-9A-F]+)", INC.read_text())}
    assert len(values) > 20
    for name, value in values.items():
        if name in DBCR0_HALVES:
            assert value << 16 == getattr(regs, DBCR0_HALVES[name]), name
        elif name.startswith("IVOR"):  # IVOR0-15 are SPRN_IVOR0 + n
            assert value == regs.SPRN_IVOR0 + int(name[4:]), name
        else:
            assert value == getattr(regs, f"SPRN_{name}"), name
