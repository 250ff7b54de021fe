"""Check 4: exception numbers convert between the arch's numberspaces losslessly, or not at all.

An :class:`~guestdbg.numbering.EquivalenceTable` conversion is a look-up in one row, so going
to another space and back must give the number one started from; where a space has no number
for the interrupt the answer is NoMapping, never a guess (``guestdbg.numbering``).
"""

from __future__ import annotations

from ..errors import NoMapping
from ..numbering import EquivalenceTable, ExceptionId


def named_exceptions(table: EquivalenceTable) -> list[ExceptionId]:
    """Every exception the plugin gives a name, in every space it declares."""
    return [ExceptionId(s.name, n) for s in table.spaces.values() for n in sorted(s.names)]


def check_converts_losslessly(table: EquivalenceTable, exc: ExceptionId) -> int:
    """Convert ``exc`` into every space and back; returns how many spaces had a number."""
    mapped = 0
    for space in table.spaces:
        try:
            there = table.convert(exc, space)
        except NoMapping:
            continue
        assert there.space == space, f"{exc} -> {space!r} gave {there}, a number of another space"
        back = table.convert(there, exc.space)
        assert back == exc, f"{exc} -> {there} -> {back}: the round trip lost the number"
        mapped += 1
    bogus = "no-such-numberspace"
    try:
        table.convert(exc, bogus)
    except NoMapping:
        pass
    else:
        raise AssertionError(f"{exc} converted into the undeclared space {bogus!r}")
    return mapped
