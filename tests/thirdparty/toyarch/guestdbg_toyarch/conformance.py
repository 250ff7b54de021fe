"""The toy's conformance profile (``guestdbg_conformance``); imported only by the kit's hook."""

from __future__ import annotations

from guestdbg.testing.profile import ConformanceProfile, GuestEventCase

from . import guest


def profile() -> ConformanceProfile:
    at = guest.labels()
    loop = at["loop"]
    return ConformanceProfile(
        make_vm=guest.make_vm,
        code_addrs=(loop, loop + 4, loop + 8, loop + 12, loop + 16),
        data_addr=at["counter"],
        outside_ram=0x100000,
        guest_events=tuple(
            GuestEventCase(name, guest.debug_exit(exception, status, at["loop"] + 12), expected)
            for name, exception, status, expected in guest.GUEST_EVENTS
        ),
    )
