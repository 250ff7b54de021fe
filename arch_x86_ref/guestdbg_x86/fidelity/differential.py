"""The differential run: each generated program single-stepped on this machine's /dev/kvm (the
reference) and on the emulated host in lockstep, every stop compared.

Both vCPUs run with KVM_GUESTDBG_SINGLESTEP; after each KVM_RUN of each, the exit (reason and,
for KVM_EXIT_DEBUG, exception/pc/dr6/dr7), the registers and the program's data area and stack
are compared (:mod:`.observe`). A difference the kernel or the hardware explains is counted
under its key (:mod:`.differences`); any other ends the program there - after it the two runs
no longer say anything about each other - and is reported with the program's seed and the stop.
So is a stop where the two are not at the same RIP or did not exit the same way, and a program
that has not halted after ``max_steps`` stops on either side.

Program ``i`` of ``run(programs, seed)`` is :func:`generate(seed + i) <.generator.generate>`:
a failure's seed regenerates its program alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guestdbg.errors import UnsupportedByArch
from guestdbg.fidelity import FidelityTally, Mismatch, compare
from guestdbg.guest_build import cache_dir
from guestdbg.kvm import constants as C

from .. import boot
from .differences import EMULATOR_REP_BATCH, explain
from .generator import DEFAULT_LENGTH, Program, ProgramLayout, generate
from .hosts import SINGLESTEP, emulated, kvm_unusable, real_kvm
from .observe import Reader, Snapshot

ARCH = "x86_64"
MAX_STEPS = 20_000
"""Far above what a program of the default length runs (loops are bounded, calls shallow)."""
BUILD_THREADS = 2


@dataclass
class ProgramRun:
    seed: int
    stops: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    stepped_from: int = 0
    """The reference's RIP before the last compared stop: the instruction that differed."""
    end: str = ""
    """How the lockstep ended: ``halted``, ``diverged`` (the first undocumented difference),
    ``limit`` or ``hung``."""

    @property
    def undocumented(self) -> list[Mismatch]:
        return [m for m in self.mismatches if m.explained_by is None]


@dataclass
class Timing:
    """Where a run's wall time went, in seconds."""

    build: float = 0.0
    load: float = 0.0
    reference: float = 0.0
    host: float = 0.0
    compare: float = 0.0

    def line(self) -> str:
        return " ".join(f"{k}={v:.2f}s" for k, v in vars(self).items())


class Differential:
    """A reference and a host machine, reused for program after program."""

    def __init__(self, out_dir: Path | None = None) -> None:
        reason = kvm_unusable()
        if reason is not None:
            raise UnsupportedByArch(f"no x86-64 reference: {reason}")
        self.out_dir = Path(out_dir) if out_dir is not None else cache_dir("fidelity-x86")
        self.reference = real_kvm()
        self.host = emulated()
        self.timing = Timing()

    def close(self) -> None:
        self.reference.close()
        self.host.close()

    def __enter__(self) -> Differential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self, programs: Iterable[Program]) -> list[Path]:
        t = time.perf_counter()
        with ThreadPoolExecutor(BUILD_THREADS) as pool:
            elves = list(pool.map(lambda p: p.build(self.out_dir), programs))
        self.timing.build += time.perf_counter() - t
        return elves

    def run_program(self, program: Program, elf: Path, max_steps: int = MAX_STEPS) -> ProgramRun:
        t = time.perf_counter()
        image = boot.read_image(elf)
        layout = program.layout(image.symbols, image.entry)
        result = ProgramRun(program.seed)
        machines = (self.reference, self.host)
        for m in machines:
            m.load(image, SINGLESTEP)
        readers = (Reader(self.reference, layout), Reader(self.host, layout))
        for m in machines:
            m.arm_watchdog()
        self.timing.load += time.perf_counter() - t
        rip = layout.entry
        try:
            while result.stops < max_steps:
                stop = result.stops
                result.stepped_from = rip
                if rip in layout.rep_at:
                    ref, got, counts = self._rep_steps(readers, rip, max_steps - stop)
                    result.stops += max(counts)
                    if counts[0] != counts[1]:
                        result.mismatches.append(self._rep_mismatch(program, stop, rip, counts))
                else:
                    ref, got = self._step(readers)
                    result.stops += 1
                rip = ref.rip
                if ref.same_as(got):
                    pass
                elif ref.same_but_dr7(got):
                    result.mismatches.append(self._dr7_mismatch(program, stop, ref, got))
                elif self._compare(program, layout, stop, readers, ref, got, result):
                    result.end = "diverged"
                    return result
                if C.KVM_EXIT_DEBUG not in (ref.exit_reason, got.exit_reason) or (
                    ref.exit_reason != got.exit_reason
                ):
                    result.end = self._ended(ref, got)
                    return result
            result.end = "limit"
            return result
        finally:
            for m in machines:
                m.disarm_watchdog()

    def _compare(
        self,
        program: Program,
        layout: ProgramLayout,
        stop: int,
        readers: tuple[Reader, Reader],
        ref: Snapshot,
        got: Snapshot,
        result: ProgramRun,
    ) -> bool:
        """Records the stop's mismatches; True if one is undocumented."""
        t = time.perf_counter()
        undefined = layout.undefined_at.get(ref.rip, 0)

        def why(name: str, r: int | None, h: int | None, state: Mapping[str, int | None]) -> Any:
            return explain(name, r, h, state, undefined_flags=undefined, halted=layout.halted)

        found = compare(
            program.seed, stop, ref.rip, readers[0].named(ref), readers[1].named(got), why
        )
        self.timing.compare += time.perf_counter() - t
        result.mismatches.extend(found)
        return any(m.explained_by is None for m in found)

    def _step(self, readers: tuple[Reader, Reader]) -> tuple[Snapshot, Snapshot]:
        return self._step_one(readers, 0), self._step_one(readers, 1)

    def _step_one(self, readers: tuple[Reader, Reader], side: int) -> Snapshot:
        t = time.perf_counter()
        machine = self.reference if side == 0 else self.host
        snap = readers[side].snapshot(machine.vcpu.run())
        spent = time.perf_counter() - t
        if side == 0:
            self.timing.reference += spent
        else:
            self.timing.host += spent
        return snap

    def _rep_steps(
        self, readers: tuple[Reader, Reader], rip: int, budget: int
    ) -> tuple[Snapshot, Snapshot, tuple[int, int]]:
        """Step each machine until it leaves the REP string instruction at ``rip`` (or stops
        exiting for steps): x86-emulator-rep-batch."""
        snaps = []
        counts = []
        for side in (0, 1):
            n = 0
            while True:
                snap = self._step_one(readers, side)
                n += 1
                if snap.exit_reason != C.KVM_EXIT_DEBUG or snap.rip != rip or n >= budget:
                    break
            snaps.append(snap)
            counts.append(n)
        return snaps[0], snaps[1], (counts[0], counts[1])

    @staticmethod
    def _dr7_mismatch(program: Program, stop: int, ref: Snapshot, got: Snapshot) -> Mismatch:
        """The one difference of most stops, without spelling out the whole state."""
        r, h = ref.debug[-1], got.debug[-1]
        known = explain("debug.dr7", r, h, {})
        why = known.key if known else None
        return Mismatch(program.seed, stop, ref.rip, "debug.dr7", r, h, why)

    @staticmethod
    def _rep_mismatch(program: Program, stop: int, rip: int, counts: tuple[int, int]) -> Mismatch:
        return Mismatch(
            program.seed, stop, rip, "stops", counts[0], counts[1], EMULATOR_REP_BATCH.key
        )

    @staticmethod
    def _ended(ref: Snapshot, got: Snapshot) -> str:
        reasons = {ref.exit_reason, got.exit_reason}
        if C.KVM_EXIT_INTR in reasons:
            return "hung"
        if C.KVM_EXIT_HLT in reasons:
            return "halted"
        return f"exit {ref.exit_reason}/{got.exit_reason}"


def run(
    programs: int,
    seed: int,
    *,
    length: int = DEFAULT_LENGTH,
    out_dir: Path | None = None,
    max_steps: int = MAX_STEPS,
    batch: int = 64,
    timing: Timing | None = None,
) -> FidelityTally:
    """``programs`` programs from ``seed`` on, each on /dev/kvm and the emulated host.

    Raises UnsupportedByArch when this machine has no usable x86-64 /dev/kvm. ``timing``, if
    given, receives where the time went."""
    tally = FidelityTally(ARCH)
    with Differential(out_dir) as diff:
        for start in range(0, programs, batch):
            chunk = [
                generate(seed + i, length=length)
                for i in range(start, min(start + batch, programs))
            ]
            for program, elf in zip(chunk, diff.build(chunk), strict=True):
                result = diff.run_program(program, elf, max_steps)
                tally.add_program(result.stops, result.mismatches)
                if result.end not in ("halted", "diverged"):
                    tally.add_program(0, [_unfinished(result)])
                    tally.programs -= 1
        if timing is not None:
            vars(timing).update(vars(diff.timing))
    return tally


def _unfinished(result: ProgramRun) -> Mismatch:
    """A program that did not halt is a difference of its own (``end`` names why)."""
    return Mismatch(result.seed, result.stops, 0, f"end:{result.end}", None, None)
