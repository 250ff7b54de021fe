"""Register reads through a session: the cheap subset read agrees with the full read, and
registers by name are the GDB layout's."""

from __future__ import annotations

import pytest

from guestdbg.errors import InvalidRequest
from guestdbg.events import ResumeAction
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session

from .support import make_vm, symbols

SYM = symbols("loop")


def test_a_subset_read_matches_the_full_read(sessions: list[Session]) -> None:
    s = Session(make_vm("loop"), "e500mc")  # type: ignore[arg-type]
    sessions.append(s)
    s.insert_point(DebugPoint(PointKind.SW_BREAK, SYM["bp_here"], 4))
    s.resume({0: ResumeAction()})
    assert s.wait_stop(10) is not None
    full = s.read_registers(0)
    names = [r.name for r in s.gdb_arch.registers]
    expedited = list(s.gdb_arch.expedite)
    some = s.read_some_registers(0, expedited)
    assert some == {n: full[n] for n in expedited}
    assert some[names.index("pc")] == SYM["bp_here"]
    mixed = [names.index("esr"), names.index("iac1"), names.index("r4"), names.index("dbsr")]
    assert s.read_some_registers(0, mixed) == {n: full[n] for n in mixed}


def test_registers_by_name_read_and_write_what_the_gdb_layout_holds(
    sessions: list[Session],
) -> None:
    s = Session(make_vm("session_smp"), "e500mc")  # type: ignore[arg-type]
    sessions.append(s)
    names = s.register_names()
    assert names[:3] == ["r0", "r1", "r2"] and "pc" in names and "xer" in names
    every = s.read_named_registers(0)
    assert list(every) == names
    assert every == dict(zip(names, s.read_registers(0), strict=True))
    s.write_named_registers(0, {"r5": 0x1234, "xer": 0x20000000})
    assert s.read_named_registers(0, ["r5", "xer"]) == {"r5": 0x1234, "xer": 0x20000000}
    before = s.read_registers(0)
    with pytest.raises(InvalidRequest, match=r"no register\(s\) \['rax'\]"):
        s.write_named_registers(0, {"r6": 1, "rax": 2})
    assert s.read_registers(0) == before
