"""The demo checks what it shows: a demo guest that names the wrong instruction for a step
makes that step fail with a one-line reason instead of printing a wrong explanation."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from guestdbg.arch import ArchInfo, CoreInfo
from guestdbg.demo import DemoFailed, run_demo
from guestdbg.demo.guest import DemoGuest
from guestdbg.hookspecs import hookimpl
from guestdbg.plugins import default_registry
from guestdbg_booke.guests.demo_guest import demo_guest

from .served import NEEDS_GDB

pytestmark = NEEDS_GDB


class WrongGuest:
    """Registered first, so its answer wins (hookspecs: firstresult, tryfirst)."""

    def __init__(self, **symbols: str) -> None:
        self.symbols = symbols

    @hookimpl(tryfirst=True)
    def guestdbg_demo(self, arch: ArchInfo, core: CoreInfo) -> DemoGuest | None:
        real = demo_guest(core.name)
        return dataclasses.replace(real, symbols={**real.symbols, **self.symbols})


@pytest.fixture
def overriding() -> Iterator[list[object]]:
    pm = default_registry().pm
    plugins: list[object] = []
    yield plugins
    for p in plugins:
        pm.unregister(p)


def run_with(overriding: list[object], tmp_path: Path, **symbols: str) -> str:
    plugin = WrongGuest(**symbols)
    default_registry().pm.register(plugin)
    overriding.append(plugin)
    out = io.StringIO()
    with pytest.raises(DemoFailed) as failed:
        run_demo(build_dir=tmp_path, out=out)
    assert "\n" not in str(failed.value)
    return str(failed.value)


def test_a_watch_stop_at_another_pc_than_the_store_fails_the_watch_step(
    overriding: list[object], tmp_path: Path
) -> None:
    reason = run_with(overriding, tmp_path, watch_store="rounds_load")
    assert reason.startswith("step 'watch': the stop's PC is 0x"), reason
    assert "not the store" in reason


def test_a_wrong_syndrome_fails_the_guest_trap_step(
    overriding: list[object], tmp_path: Path
) -> None:
    reason = run_with(overriding, tmp_path, guest_trap_syndrome="total")
    assert reason.startswith("step 'guest_trap': the guest's handler saw 0x13ba"), reason
