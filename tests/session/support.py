"""Sessions over the emulated e500mc host: guests from tests/guests/ppc, symbols from their ELF."""

from __future__ import annotations

import functools
from pathlib import Path

from guestdbg.emuhost import image
from guestdbg.plugins import default_registry
from guestdbg_booke.guests import build

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "guests" / "ppc"
BUILD = ROOT / "tests" / "guests" / "build" / "ppc"


@functools.cache
def guest(name: str) -> Path:
    return build(GUESTS / f"{name}.S", BUILD)


@functools.cache
def symbols(name: str) -> dict[str, int]:
    return image.symbols(guest(name))


def make_vm(name: str, smp: int = 1, core: str = "e500mc") -> object:
    return default_registry().emulated_host(core).create_vm(str(guest(name)), smp=smp)
