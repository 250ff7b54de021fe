"""Tallying a differential run of an emulated host against an independent reference.

An emulated KVM host is only worth what it reproduces. Each arch checks its host by running the
same random programs on it and on a reference that shares none of its assumptions (QEMU's own
CPU model, the real ``/dev/kvm``), stopping both at the same points and comparing what the
guest can observe there: registers and memory. Every difference is a :class:`Mismatch`. A
difference that the real kernel or the real hardware explains (the reference is not KVM, or not
the hardware) is *documented*: the arch names the :class:`KnownDifference` that explains it,
and the same table appears in ``docs/fidelity.md`` with its primary source. Any other
difference is a bug in the host (or the reference) and fails the run with the program's seed
and the first stop where it shows.

This module holds only what both arches share: the records and the tally whose last line the
benchmark prints. The generators, references and comparisons are the arches' own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KnownDifference:
    """A difference between the emulated host and the reference that is right as it is."""

    key: str
    """Short stable name, also the row's name in ``docs/fidelity.md``."""
    what: str
    """The field(s) it covers and how they differ."""
    source: str
    """The primary source that explains it: kernel file and function, ISA or manual section."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One observable that differs at one stop of one program."""

    seed: int
    """The program's generator seed: regenerating it reproduces the program exactly."""
    stop: int
    """Index of the stop (0 = the first compared stop)."""
    pc: int
    """The reference's PC at that stop."""
    name: str
    """What differs: a register name, or ``mem[0x...]`` for a guest memory word."""
    reference: int | None
    host: int | None
    explained_by: str | None = None
    """The :attr:`KnownDifference.key` that documents it, or None."""

    def __str__(self) -> str:
        def show(v: int | None) -> str:
            return "-" if v is None else f"{v:#x}"

        why = f" ({self.explained_by})" if self.explained_by else " (undocumented)"
        return (
            f"seed {self.seed} stop {self.stop} pc {self.pc:#x}: {self.name} reference "
            f"{show(self.reference)} host {show(self.host)}{why}"
        )


Explain = Callable[[str, int | None, int | None, Mapping[str, int | None]], KnownDifference | None]
"""``explain(name, reference, host, reference_state)`` -> the documented difference, or None."""


def compare(
    seed: int,
    stop: int,
    pc: int,
    reference: Mapping[str, int | None],
    host: Mapping[str, int | None],
    explain: Explain,
) -> list[Mismatch]:
    """Every name in either state whose values differ, each explained if the arch can."""
    out = []
    for name in sorted(reference.keys() | host.keys()):
        ref, got = reference.get(name), host.get(name)
        if ref == got:
            continue
        known = explain(name, ref, got, reference)
        out.append(Mismatch(seed, stop, pc, name, ref, got, known.key if known else None))
    return out


@dataclass
class FidelityTally:
    """Counts over a differential run; ``line()`` is what ``bench/fidelity.py`` prints."""

    arch: str
    programs: int = 0
    compared_stops: int = 0
    mismatches: int = 0
    undocumented: int = 0
    by_difference: dict[str, int] = field(default_factory=dict)
    first_undocumented: list[Mismatch] = field(default_factory=list)
    keep: int = 20
    """How many undocumented mismatches are kept for the report (all are counted)."""

    def add_program(self, stops: int, mismatches: Iterable[Mismatch]) -> None:
        self.programs += 1
        self.compared_stops += stops
        for m in mismatches:
            self.mismatches += 1
            if m.explained_by is None:
                self.undocumented += 1
                if len(self.first_undocumented) < self.keep:
                    self.first_undocumented.append(m)
            else:
                self.by_difference[m.explained_by] = self.by_difference.get(m.explained_by, 0) + 1

    def merge(self, other: FidelityTally) -> None:
        self.programs += other.programs
        self.compared_stops += other.compared_stops
        self.mismatches += other.mismatches
        self.undocumented += other.undocumented
        for k, n in other.by_difference.items():
            self.by_difference[k] = self.by_difference.get(k, 0) + n
        room = self.keep - len(self.first_undocumented)
        self.first_undocumented.extend(other.first_undocumented[: max(room, 0)])

    def line(self) -> str:
        return (
            f"programs={self.programs} compared_stops={self.compared_stops} "
            f"mismatches={self.mismatches} undocumented={self.undocumented}"
        )
