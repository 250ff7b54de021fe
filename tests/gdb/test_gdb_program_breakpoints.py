"""The stub undoes GDB's skip of a program breakpoint (guestdbg.gdb.program_breakpoints): the
packet sequences below are the ones gdb-multiarch 13.1 sends (measured with ``set debug remote
1``), against the in-process test target with a ``tw`` in its memory."""

from __future__ import annotations

from dataclasses import dataclass

from memtarget import PC, MemTarget, PpcTestArch
from rsp_client import ask1
from test_gdb_stub import connect

from guestdbg.events import ResumeAction
from guestdbg.gdb.stub import GdbStub
from guestdbg_booke.gdb_arch import BookeGdbArch
from guestdbg_x86.gdb_arch import X86GdbArch

TW = bytes.fromhex("7fe00008")  # tw 31,0,0: GDB's PowerPC breakpoint instruction
TRAP_AT = 0x1000


@dataclass
class TrapArch(PpcTestArch):
    program_breakpoint_size: int = 4

    def is_program_breakpoint(self, code: bytes) -> bool:
        return BookeGdbArch.is_program_breakpoint(self, code)  # type: ignore[arg-type]


def stopped_on_trap(word: bytes = TW) -> tuple[GdbStub, MemTarget]:
    t = MemTarget()
    t.gdb_arch = TrapArch()
    t.write_memory(0, TRAP_AT, word)
    stub, _ = connect(t)
    return stub, t


def pc(stub: GdbStub) -> int:
    return int(ask1(stub, b"p20"), 16)


def set_pc(stub: GdbStub, value: int) -> bytes:
    return ask1(stub, b"P20=%08x" % value)


def test_gdbs_skip_of_a_trap_under_its_breakpoint_leaves_the_vcpu_on_the_trap() -> None:
    stub, t = stopped_on_trap()
    assert pc(stub) == TRAP_AT
    assert ask1(stub, b"Z0,1000,4") == b"OK"  # GDB re-inserts its breakpoints first...
    assert set_pc(stub, TRAP_AT + 4) == b"OK"  # ...then skips the "permanent" one
    assert t.regs[0][PC] == TRAP_AT
    stub.receive(b"$vCont;c#a8")
    assert t.count.resume[-1] == {0: ResumeAction(step=False)}


def test_a_single_step_breakpoint_after_the_skip_turns_the_continue_into_a_step() -> None:
    stub, t = stopped_on_trap()
    ask1(stub, b"Z0,1000,4")
    set_pc(stub, TRAP_AT + 4)
    assert ask1(stub, b"Z0,1004,4") == b"OK"  # stepi: GDB's single-step breakpoint
    stub.receive(b"$vCont;c#a8")
    assert t.count.resume[-1] == {0: ResumeAction(step=True)}


def test_a_user_breakpoint_already_at_the_next_instruction_keeps_the_continue() -> None:
    stub, t = stopped_on_trap()
    ask1(stub, b"Z0,1000,4")
    ask1(stub, b"Z0,1004,4")  # the user's, inserted with the others before the skip
    set_pc(stub, TRAP_AT + 4)
    assert t.regs[0][PC] == TRAP_AT
    stub.receive(b"$vCont;c#a8")
    assert t.count.resume[-1] == {0: ResumeAction(step=False)}


def test_set_pc_and_jump_write_the_pc_before_breakpoints_are_back_and_are_obeyed() -> None:
    stub, t = stopped_on_trap()
    assert set_pc(stub, TRAP_AT + 4) == b"OK"
    assert t.regs[0][PC] == TRAP_AT + 4
    ask1(stub, b"Z0,1000,4")
    stub.receive(b"$vCont;c#a8")
    assert t.count.resume[-1] == {0: ResumeAction(step=False)}


def test_only_a_program_breakpoint_under_a_breakpoint_moved_by_its_size_is_a_skip() -> None:
    stub, t = stopped_on_trap(bytes.fromhex("60000000"))  # nop: not a program breakpoint
    ask1(stub, b"Z0,1000,4")
    set_pc(stub, TRAP_AT + 4)
    assert t.regs[0][PC] == TRAP_AT + 4
    stub, t = stopped_on_trap()
    ask1(stub, b"Z0,1000,4")
    set_pc(stub, TRAP_AT + 8)  # not the next instruction
    assert t.regs[0][PC] == TRAP_AT + 8
    stub, t = stopped_on_trap()
    ask1(stub, b"Z2,2000,4")  # a watchpoint makes nothing permanent
    set_pc(stub, TRAP_AT + 4)
    assert t.regs[0][PC] == TRAP_AT + 4


def test_a_second_pc_write_cancels_the_skip_and_is_applied() -> None:
    stub, t = stopped_on_trap()
    ask1(stub, b"Z0,1000,4")
    set_pc(stub, TRAP_AT + 4)
    ask1(stub, b"Z0,1004,4")
    set_pc(stub, 0x1100)
    assert t.regs[0][PC] == 0x1100
    stub.receive(b"$vCont;c#a8")
    assert t.count.resume[-1] == {0: ResumeAction(step=False)}


def test_the_skip_is_recognised_in_a_G_packet_too() -> None:
    stub, t = stopped_on_trap()
    ask1(stub, b"Z0,1000,4")
    regs = bytearray.fromhex(ask1(stub, b"g").decode())
    regs[4 * PC : 4 * PC + 4] = (TRAP_AT + 4).to_bytes(4, "big")
    regs[4 * 3 : 4 * 4] = (0x33).to_bytes(4, "big")
    assert ask1(stub, b"G" + regs.hex().encode()) == b"OK"
    assert (t.regs[0][PC], t.regs[0][3]) == (TRAP_AT, 0x33)


def test_gdbs_program_breakpoints_are_every_powerpc_trap_and_the_x86_int3() -> None:
    ppc = BookeGdbArch()
    for word in (0x7FE00008, 0x7C852008, 0x0C850001, 0x0FE00000, 0x7C000088, 0x08000000):
        assert ppc.is_program_breakpoint(word.to_bytes(4, "big")), hex(word)
    for word in (0x00DDDD00, 0x44000002, 0x60000000, 0x7C0002A6, 0):
        assert not ppc.is_program_breakpoint(word.to_bytes(4, "big")), hex(word)
    x86 = X86GdbArch()
    assert x86.program_breakpoint_size == 1 and x86.is_program_breakpoint(b"\xcc")
    assert not x86.is_program_breakpoint(b"\xcd")
