"""What the stub says about itself and about stops: qSupported derivation, vCont?, stop-reply
formatting, register encoding, and the Enn code of each failure."""

from __future__ import annotations

import errno

import hypothesis.strategies as st
import pytest
from hypothesis import given
from memtarget import MSR, PC, REGISTERS, SP, TEST_CAPS, PpcTestArch

from guestdbg.capabilities import DebugCapabilities
from guestdbg.errors import (
    BadAddress,
    GuestDebugError,
    InvalidRequest,
    KernelError,
    NoFreeSlot,
    NotStopped,
    UnsupportedByArch,
)
from guestdbg.events import StopEvent, StopKind, StopReason
from guestdbg.gdb.commands import PacketError
from guestdbg.gdb.error_replies import (
    BadChecksum,
    PacketTooLong,
    UnknownThread,
    errno_for,
    error_reply,
    error_text_reply,
)
from guestdbg.gdb.features import StubFeatures
from guestdbg.gdb.register_codec import RegisterCodec
from guestdbg.gdb.stop_reply import format_stop_reply
from guestdbg.gdb.target import GdbRegister, encode_register
from guestdbg.points import PointKind

NO_HW = DebugCapabilities(hw_breakpoints=0, hw_watchpoints=0, single_step=False)
X86_LIKE = DebugCapabilities(
    hw_breakpoints=4,
    hw_watchpoints=0,
    shared_slots=True,
    watch_kinds=frozenset({PointKind.WATCH_WRITE, PointKind.WATCH_ACCESS}),
)


def _features(reply: bytes) -> set[bytes]:
    return set(reply.split(b";"))


def test_qsupported_offers_hwbreak_only_with_hardware_breakpoints() -> None:
    with_hw = StubFeatures.derive(TEST_CAPS, 4096).qsupported_reply()
    without = StubFeatures.derive(NO_HW, 4096).qsupported_reply()
    assert b"hwbreak+" in _features(with_hw)
    assert b"hwbreak+" not in _features(without)
    assert _features(with_hw) - _features(without) == {b"hwbreak+"}


def test_qsupported_advertises_exactly_what_is_implemented() -> None:
    reply = StubFeatures.derive(TEST_CAPS, 0x1000).qsupported_reply()
    assert _features(reply) == {
        b"PacketSize=1000",
        b"QStartNoAckMode+",
        b"swbreak+",
        b"hwbreak+",
        b"qXfer:features:read+",
        b"vContSupported+",
    }
    # Never: non-stop, multiprocess, conditions, memory maps, tracepoints (not implemented).
    for absent in (b"QNonStop+", b"multiprocess+", b"ConditionalBreakpoints+"):
        assert absent not in reply


def test_vcont_query_offers_step_only_when_the_target_can_step() -> None:
    assert StubFeatures.derive(TEST_CAPS).vcont_reply() == b"vCont;c;C;s;S;r"
    assert StubFeatures.derive(NO_HW).vcont_reply() == b"vCont;c;C"


def test_point_types_follow_the_capabilities() -> None:
    full = StubFeatures.derive(TEST_CAPS)
    assert [full.supports_point_type(t) for t in range(6)] == [True] * 5 + [False]
    bare = StubFeatures.derive(NO_HW)
    assert [bare.supports_point_type(t) for t in range(5)] == [True, False, False, False, False]
    shared = StubFeatures.derive(X86_LIKE)
    assert shared.watchpoints and shared.hw_breakpoints  # x86 DR0-3 serve both


CODEC = RegisterCodec(PpcTestArch())
ALL = frozenset({"swbreak", "hwbreak"})
FEAT = StubFeatures.derive(TEST_CAPS)


def _regs(pc: int) -> list[int | None]:
    values: list[int | None] = [0] * len(REGISTERS)
    values[PC], values[SP], values[MSR] = pc, 0x4FF0, 0x29000
    return values


def _stop(kind: StopKind, vcpu: int = 0, address: int | None = None) -> StopEvent:
    return StopEvent(vcpu, StopReason(kind, 0x1010, address))


@pytest.mark.parametrize(
    ("kind", "address", "expected"),
    [
        (StopKind.SW_BREAK, None, b"T05thread:2;swbreak:;"),
        (StopKind.HW_BREAK, None, b"T05thread:2;hwbreak:;"),
        (StopKind.WATCH, 0x2004, b"T05thread:2;watch:2004;"),
        (StopKind.RWATCH, 0x2004, b"T05thread:2;rwatch:2004;"),
        (StopKind.AWATCH, 0x2004, b"T05thread:2;awatch:2004;"),
        (StopKind.STEP, None, b"T05thread:2;"),
        (StopKind.INTERRUPT, None, b"T02thread:2;"),
        (StopKind.HALT, None, b"T00thread:2;"),
    ],
)
def test_stop_reply_names_thread_and_reason(
    kind: StopKind, address: int | None, expected: bytes
) -> None:
    assert format_stop_reply(_stop(kind, 1, address), FEAT, ALL, CODEC) == expected


def test_a_halt_is_no_signal_and_a_vcpu_that_could_not_go_on_is_sigabrt() -> None:
    """GDB prints "Program stopped." for signal 0 and "Program received signal SIGABRT" for 6
    (measured with gdb-multiarch 13); SIGTRAP would claim a debug event at a PC with none."""
    halted = StopEvent(0, StopReason(StopKind.HALT, 0x1010, why="KVM_EXIT_HLT on vCPU 0"))
    failed = StopEvent(0, StopReason(StopKind.HALT, 0x1010, why="KVM_RUN failed", fault=True))
    assert format_stop_reply(halted, FEAT, ALL, CODEC) == b"T00thread:1;"
    assert format_stop_reply(failed, FEAT, ALL, CODEC) == b"T06thread:1;"


def test_stop_reply_carries_expedited_pc_sp_msr_in_target_byte_order() -> None:
    reply = format_stop_reply(_stop(StopKind.STEP), FEAT, ALL, CODEC, (PC, SP, MSR), _regs(0x1010))
    assert reply == b"T05thread:1;20:00001010;01:00004ff0;21:00029000;"


def test_unavailable_expedited_registers_are_left_out() -> None:
    values = _regs(0x1010)
    values[MSR] = None
    reply = format_stop_reply(_stop(StopKind.STEP), FEAT, ALL, CODEC, (PC, SP, MSR), values)
    assert reply == b"T05thread:1;20:00001010;01:00004ff0;"


def test_reason_fields_are_sent_only_when_gdb_announced_them() -> None:
    none: frozenset[str] = frozenset()
    assert format_stop_reply(_stop(StopKind.SW_BREAK), FEAT, none, CODEC) == b"T05thread:1;"
    assert format_stop_reply(_stop(StopKind.HW_BREAK), FEAT, none, CODEC) == b"T05thread:1;"


def test_a_stop_reason_the_stub_does_not_serve_is_not_reported() -> None:
    bare = StubFeatures.derive(NO_HW)
    assert format_stop_reply(_stop(StopKind.HW_BREAK), bare, ALL, CODEC) == b"T05thread:1;"
    assert format_stop_reply(_stop(StopKind.WATCH, 0, 8), bare, ALL, CODEC) == b"T05thread:1;"


@given(st.lists(st.one_of(st.none(), st.integers(0, 2**32 - 1)), min_size=38, max_size=38))
def test_register_codec_agrees_with_encode_register(values: list[int | None]) -> None:
    expected = "".join(encode_register(v, 32, "big") for v in values).encode()
    assert CODEC.encode_all(values) == expected
    decoded = CODEC.decode_all(expected)
    assert decoded == {n: v for n, v in enumerate(values) if v is not None}


def test_register_codec_handles_mixed_widths_little_endian() -> None:
    class Arch(PpcTestArch):
        pass

    arch = Arch()
    arch.byteorder = "little"
    arch.registers = (GdbRegister("a", 64, "f"), GdbRegister("b", 16, "f"))
    codec = RegisterCodec(arch)
    assert codec.encode_all([0x1122334455667788, 0xABCD]) == b"8877665544332211cdab"
    assert codec.decode_all(b"8877665544332211cdab") == {0: 0x1122334455667788, 1: 0xABCD}
    with pytest.raises(PacketError):
        codec.decode_one(1, b"cdab00")
    with pytest.raises(PacketError):
        codec.decode_one(1, b"cdxz")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidRequest("x"), errno.EINVAL),
        (PacketError("x"), errno.EINVAL),
        (UnknownThread("x"), errno.ESRCH),
        (PacketTooLong("x"), errno.EMSGSIZE),
        (BadChecksum("x"), errno.EBADMSG),
        (BadAddress("x"), errno.EFAULT),
        (NoFreeSlot("x"), errno.ENOSPC),
        (UnsupportedByArch("x"), errno.EOPNOTSUPP),
        (NotStopped("x"), errno.EBUSY),
        (KernelError("KVM_SET_GUEST_DEBUG", errno.EINVAL), errno.EIO),
        (GuestDebugError("x"), errno.EPERM),
    ],
)
def test_each_failure_kind_has_its_own_errno(exc: Exception, code: int) -> None:
    assert errno_for(exc) == code
    assert error_reply(code) == b"E%02x" % code


def test_the_errnos_of_the_target_facing_errors_are_distinct() -> None:
    kinds = [InvalidRequest, BadAddress, NoFreeSlot, UnsupportedByArch, NotStopped, UnknownThread]
    codes = [errno_for(k("x")) for k in kinds]
    assert len(set(codes)) == len(codes)


def test_a_point_error_carries_its_reason_as_printable_text() -> None:
    """``E.nn.text``: GDB 13 prints what follows the second dot for Z1; nothing in the text may
    be taken for framing, an escape or a run-length marker."""
    reply = error_text_reply(UnsupportedByArch("no $int3# here}*\n: use hbreak"))
    assert reply == b"E.5f.no ?int3? here???: use hbreak"
