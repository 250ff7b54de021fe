"""``bench/false_hit.py``'s floor of an in-place false hit on the emulated e500mc host: what
its loop does, not how long it takes. Every KVM_RUN ends at the trap word, the word the view
reads there is the trap, and the ``addi`` the loop carries out by KVM_SET_REGS is the guest's
own count (the bench checks the guest's counter against its hits and exits otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import false_hit as bench


def test_the_in_place_floor_passes_every_hit_as_the_guest_counts_it() -> None:
    elf = bench.build(bench.GUEST, bench.BUILD)
    per_call = bench.in_place_round(elf, 300)
    assert list(per_call) == list(bench.IN_PLACE_CALLS)
    assert all(us > 0 for us in per_call.values())


def test_the_floor_refuses_a_loop_that_is_not_an_addi(monkeypatch: pytest.MonkeyPatch) -> None:
    """The floor carries out ``addi`` only; at another instruction it stops, saying so, rather
    than time a pass that would not be the guest's."""
    elf = bench.build(bench.GUEST, bench.BUILD)
    sym = dict(bench.symbols(elf))
    sym["loop"] = sym["hit"]  # a stw
    monkeypatch.setattr(bench, "symbols", lambda _elf: sym)
    with pytest.raises(SystemExit, match="not an addi"):
        bench.in_place_round(elf, 10)
