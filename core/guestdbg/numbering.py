"""Exception numbers that always say which numberspace they belong to.

The same interrupt has several numbers: BookE calls the program interrupt IVOR 6, it sits at fixed
offset 0xE0 on cores with interrupt fixed offsets, and Linux KVM queues it at priority 3
(``BOOKE_IRQPRIO_PROGRAM``). A bare ``6`` is a bug waiting to happen, so every number travels as an
:class:`ExceptionId` and conversion goes through an :class:`EquivalenceTable` that an arch plugin
declares. A row of the table lists one interrupt in every space that has it; conversion is a
look-up in that row, so it is lossless where a mapping exists and a :class:`NoMapping` error where
it does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import InvalidRequest, NoMapping


@dataclass(frozen=True, slots=True)
class ExceptionId:
    """One exception number, tagged with the numberspace it is a number in."""

    space: str
    number: int

    def __str__(self) -> str:
        return f"{self.space}:{self.number:#x}"

    def to_json(self) -> dict[str, object]:
        return {"space": self.space, "number": self.number}

    @classmethod
    def from_json(cls, doc: object) -> ExceptionId:
        if (
            not isinstance(doc, Mapping)
            or not isinstance(doc.get("space"), str)
            or type(doc.get("number")) is not int
        ):
            raise InvalidRequest(f"an exception id needs a string space and an int number: {doc!r}")
        return cls(doc["space"], doc["number"])


@dataclass(frozen=True, slots=True)
class Numberspace:
    """A family of exception numbers with the names its documentation uses."""

    name: str
    description: str
    names: Mapping[int, str] = field(default_factory=dict)

    def label(self, number: int) -> str:
        return self.names.get(number, f"{number:#x}")


class EquivalenceTable:
    """Rows of numbers that name the same interrupt in different numberspaces.

    Validation happens once, at construction: a number may appear in only one row of its space,
    otherwise conversion from that space would be ambiguous (lossy).
    """

    def __init__(self, spaces: Iterable[Numberspace], rows: Iterable[Mapping[str, int]]) -> None:
        self.spaces: dict[str, Numberspace] = {s.name: s for s in spaces}
        self._index: dict[tuple[str, int], Mapping[str, int]] = {}
        for row in rows:
            for space, number in row.items():
                if space not in self.spaces:
                    raise ValueError(f"row {dict(row)} names unknown numberspace {space!r}")
                key = (space, number)
                if key in self._index:
                    raise ValueError(f"{space}:{number:#x} is in two rows; conversion would lose")
                self._index[key] = dict(row)

    def convert(self, exc: ExceptionId, space: str) -> ExceptionId:
        """Return ``exc`` as a number of ``space``; raises NoMapping where there is none."""
        if space not in self.spaces:
            raise NoMapping(f"unknown numberspace {space!r}")
        if exc.space == space:
            return exc
        row = self._index.get((exc.space, exc.number))
        if row is None or space not in row:
            raise NoMapping(f"{self.describe(exc)} has no number in numberspace {space!r}")
        return ExceptionId(space, row[space])

    def describe(self, exc: ExceptionId) -> str:
        ns = self.spaces.get(exc.space)
        if ns is None:
            return str(exc)
        return f"{exc.space}:{ns.label(exc.number)} ({exc.number:#x})"

    def known(self, exc: ExceptionId) -> bool:
        return (exc.space, exc.number) in self._index or (
            exc.space in self.spaces and exc.number in self.spaces[exc.space].names
        )
