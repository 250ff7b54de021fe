"""Going on from a BookE watchpoint stop: the DAC fires before the access, so the session steps
the access with that watchpoint left out of this vCPU's registers (as Linux does for its own
DAC users); otherwise every continue would report the same access again."""

from __future__ import annotations

from guestdbg.events import ResumeAction, StopKind
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg_booke import abi

from .support import make_vm, symbols

SYM = symbols("loop")
R4 = abi.layout().field("struct kvm_regs", "gpr", 4)


def test_each_continue_from_a_write_watch_reaches_the_next_write(sessions: list[Session]) -> None:
    s = Session(make_vm("loop"), "e500mc")  # type: ignore[arg-type]
    sessions.append(s)
    s.insert_point(DebugPoint(PointKind.WATCH_WRITE, SYM["counter"], 4))
    seen = []
    for _ in range(5):
        s.resume({0: ResumeAction()})
        ev = s.wait_stop(10)
        assert ev is not None and ev.reason.kind is StopKind.WATCH
        assert (ev.reason.pc, ev.reason.address) == (SYM["store_insn"], SYM["counter"])
        seen.append(R4.get(s.vm.vcpus[0].get_regs()))
        # stopped before the access: memory still holds the previous iteration's value
        assert s.read_memory(0, SYM["counter"], 4) == max(seen[-1] - 1, 0).to_bytes(4, "big")
    assert seen == [0, 1, 2, 3, 4]


def test_a_step_from_a_read_watch_executes_the_load(sessions: list[Session]) -> None:
    s = Session(make_vm("loop"), "e500mc")  # type: ignore[arg-type]
    sessions.append(s)
    s.insert_point(DebugPoint(PointKind.WATCH_READ, SYM["counter"], 4))
    s.resume({0: ResumeAction()})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.RWATCH
    assert ev.reason.pc == SYM["load_insn"]
    s.resume({0: ResumeAction(step=True)})
    ev = s.wait_stop(10)
    assert ev is not None and ev.reason.kind is StopKind.STEP
    assert ev.reason.pc == SYM["load_insn"] + 4
