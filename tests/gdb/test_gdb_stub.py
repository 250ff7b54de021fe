"""The stub's state machine, bytes in and bytes out, against the in-process test target."""

from __future__ import annotations

import pytest
from memtarget import MSR, PC, MemTarget
from rsp_client import ask, ask1, make_packet, split_output

from guestdbg.capabilities import DebugCapabilities
from guestdbg.events import ResumeAction, StopEvent, StopKind, StopReason
from guestdbg.gdb.context import StubState
from guestdbg.gdb.features import MIN_PACKET_SIZE
from guestdbg.gdb.stub import GdbStub
from guestdbg.gdb.target import target_xml
from guestdbg.points import DebugPoint, PointKind

E_INVAL, E_SRCH, E_FAULT, E_NOSPC, E_OPNOTSUPP, E_BUSY = (
    b"E16", b"E03", b"E0e", b"E1c", b"E5f", b"E10"
)  # fmt: skip


def point_error(reply: bytes) -> bytes:
    """The ``Enn`` code of a ``Z``/``z`` error reply, which comes as ``E.nn.reason``."""
    assert reply.startswith(b"E.") and reply[4:5] == b".", reply
    return b"E" + reply[2:4]


def connect(target: MemTarget | None = None, vcpus: int = 1) -> tuple[GdbStub, MemTarget]:
    t = target or MemTarget(vcpus=vcpus)
    stub = GdbStub(t)
    stub.connection_made()
    ask(stub, b"qSupported:swbreak+;hwbreak+;vContSupported+")
    return stub, t


def run_to_stop(stub: GdbStub, t: MemTarget, resume: bytes) -> bytes:
    assert ask(stub, resume) == []
    assert stub.state is StubState.RUNNING
    ev = t.wait_stop(1.0)
    assert ev is not None
    (reply,) = split_output(stub.report_stop(ev))[1]
    assert stub.state in (StubState.IDLE,)
    return reply


# -- acknowledgements ----------------------------------------------------------------------


def test_every_good_packet_is_acked_until_no_ack_mode() -> None:
    stub, _ = connect()
    acks, bodies = split_output(stub.receive(make_packet(b"qAttached")))
    assert (acks, bodies) == ([b"+"], [b"1"])
    acks, bodies = split_output(stub.receive(make_packet(b"QStartNoAckMode")))
    assert (acks, bodies) == ([b"+"], [b"OK"])  # the switch packet itself is still acked
    assert not stub.acks
    acks, bodies = split_output(stub.receive(b"+" + make_packet(b"qAttached")))
    assert (acks, bodies) == ([], [b"1"])


def test_bad_checksum_is_nacked_and_not_executed() -> None:
    stub, t = connect()
    out = stub.receive(b"$M1000,1:ff#00")
    assert out == b"-"
    assert t.memory[0] == 0x60


def test_nack_resends_the_last_reply() -> None:
    stub, _ = connect()
    first = stub.receive(make_packet(b"qC"))
    assert stub.receive(b"-") == first[1:]  # the same packet, without the ack


def test_bad_checksum_in_no_ack_mode_gets_an_error_reply() -> None:
    stub, _ = connect()
    ask(stub, b"QStartNoAckMode")
    assert split_output(stub.receive(b"$g#00"))[1] == [b"E4a"]


def test_a_packet_over_packet_size_gets_an_error_and_the_stream_stays_in_sync() -> None:
    stub, t = connect()
    big = b"M1000,1000:" + b"00" * 0x1000
    assert ask(stub, big) == [b"E5a"]
    assert t.memory[:4] == bytes.fromhex("60000000")
    assert ask(stub, b"qAttached") == [b"1"]


def test_unknown_packets_get_the_empty_reply() -> None:
    stub, _ = connect()
    assert ask(stub, b"vMustReplyEmpty") == [b""]
    assert ask(stub, b"qTStatus") == [b""]


# -- registers -----------------------------------------------------------------------------


def test_halt_reason_after_connect_reports_the_attach_stop_with_registers() -> None:
    stub, t = connect()
    assert t.count.attach == 1
    assert ask1(stub, b"?") == b"T02thread:1;20:00001000;01:00004ff0;21:00029000;"


def test_g_returns_the_register_file_in_gdb_order() -> None:
    stub, t = connect()
    g = ask1(stub, b"g")
    assert len(g) == 38 * 8
    assert g[PC * 8 : PC * 8 + 8] == b"00001000"
    assert int(g[3 * 8 : 4 * 8], 16) == t.regs[0][3]


def test_G_writes_only_the_registers_whose_value_changed() -> None:
    stub, t = connect()
    g = bytearray(ask1(stub, b"g"))
    g[MSR * 8 : MSR * 8 + 8] = b"00021000"
    g[5 * 8 : 6 * 8] = b"xxxxxxxx"  # unavailable: left alone
    assert ask1(stub, b"G" + bytes(g)) == b"OK"
    assert t.count.register_writes == [{MSR: 0x21000}]
    assert ask1(stub, b"G" + bytes(g[:-8])) == E_INVAL


def test_P_then_p_and_bad_register_writes_change_nothing() -> None:
    stub, t = connect()
    assert ask1(stub, b"P20=00002000") == b"OK"
    assert ask1(stub, b"p20") == b"00002000"
    assert t.regs[0][PC] == 0x2000
    for bad in (b"P20=0020", b"P20=xxxxxxxx", b"P99=00000000", b"P20=0000200g"):
        assert ask1(stub, bad) == E_INVAL
    assert ask1(stub, b"p99") == E_INVAL
    assert t.regs[0][PC] == 0x2000


def test_Hg_selects_the_vcpu_for_registers_and_an_unknown_thread_is_refused() -> None:
    stub, _ = connect(vcpus=3)
    assert ask1(stub, b"Hg3") == b"OK"
    assert ask1(stub, b"p20") == b"00001200"
    assert ask1(stub, b"Hg9") == E_SRCH
    assert ask1(stub, b"p20") == b"00001200"  # the selection did not change
    assert ask1(stub, b"Hg0") == b"OK"
    assert ask1(stub, b"p20") == b"00001000"  # "any": the thread of the last stop


# -- memory --------------------------------------------------------------------------------


def test_M_and_X_write_and_m_reads_back() -> None:
    stub, t = connect()
    assert ask1(stub, b"M1000,4:deadbeef") == b"OK"
    assert ask1(stub, b"X1004,4:}\x03}\x04}]}\n") == b"OK"  # '#', '$', '}', '*'
    assert ask1(stub, b"m1000,8") == b"deadbeef23247d2a"
    assert bytes(t.memory[:8]) == bytes.fromhex("deadbeef23247d2a")


def test_zero_length_X_is_the_support_probe_and_changes_nothing() -> None:
    stub, t = connect()
    before = bytes(t.memory)
    assert ask1(stub, b"X1000,0:") == b"OK"
    assert bytes(t.memory) == before


def test_bad_addresses_get_efault_and_change_nothing() -> None:
    stub, t = connect()
    before = bytes(t.memory)
    assert ask1(stub, b"m10,4") == E_FAULT
    end = t.base + len(t.memory)
    assert ask1(stub, b"M%x,8:0102030405060708" % (end - 4)) == E_FAULT
    assert bytes(t.memory) == before


def test_a_read_longer_than_a_reply_is_cut_to_what_fits() -> None:
    stub, _ = connect()
    data = ask1(stub, b"m1000,100000")
    assert 0 < len(data) <= 4096 and len(data) % 2 == 0


# -- breakpoints and watchpoints -----------------------------------------------------------


def test_third_hardware_breakpoint_is_refused_with_enospc_and_nothing_changes() -> None:
    stub, t = connect()
    assert ask1(stub, b"Z1,1100,4") == b"OK"
    assert ask1(stub, b"Z1,1104,4") == b"OK"
    before = t.point_refs()
    reply = ask1(stub, b"Z1,1108,4")
    assert point_error(reply) == E_NOSPC
    assert b"hardware breakpoint slots are in use" in reply  # GDB prints it for Z1
    assert t.point_refs() == before


def test_arch_limits_come_back_as_distinct_errors() -> None:
    caps = DebugCapabilities(
        hw_breakpoints=2,
        hw_watchpoints=2,
        watch_kinds=frozenset({PointKind.WATCH_WRITE, PointKind.WATCH_ACCESS}),
        watch_lengths=(1, 2, 4, 8),
        hw_break_lengths=(4,),
        sw_break_size=4,
    )
    stub, t = connect(MemTarget(caps=caps))
    assert (
        point_error(ask1(stub, b"Z3,2000,4")) == E_OPNOTSUPP
    )  # no read-only watchpoints (x86-like)
    assert point_error(ask1(stub, b"Z2,2001,4")) == E_INVAL  # misaligned
    assert point_error(ask1(stub, b"Z0,10,4")) == E_FAULT  # not guest memory
    assert point_error(ask1(stub, b"Z2,2000,0")) == E_INVAL
    assert t.point_refs() == {}


def test_point_types_the_target_lacks_get_the_empty_reply() -> None:
    bare = DebugCapabilities(hw_breakpoints=0, hw_watchpoints=0, sw_break_size=4)
    stub, t = connect(MemTarget(caps=bare))
    assert ask(stub, b"Z1,1100,4") == [b""]
    assert ask(stub, b"Z2,2000,4") == [b""]
    assert ask(stub, b"Z5,2000,4") == [b""]
    assert ask1(stub, b"Z0,1100,4") == b"OK"
    assert list(t.point_refs()) == [DebugPoint(PointKind.SW_BREAK, 0x1100, 4)]


def test_insert_twice_remove_twice_and_a_third_remove_is_refused() -> None:
    stub, t = connect()
    assert ask1(stub, b"Z0,1100,4") == b"OK"
    assert ask1(stub, b"Z0,1100,4") == b"OK"
    assert t.point_refs() == {DebugPoint(PointKind.SW_BREAK, 0x1100, 4): 2}
    assert ask1(stub, b"z0,1100,4") == b"OK"
    assert ask1(stub, b"z0,1100,4") == b"OK"
    assert point_error(ask1(stub, b"z0,1100,4")) == E_INVAL
    assert t.point_refs() == {}


# -- running and stopping ------------------------------------------------------------------


def test_continue_to_a_software_breakpoint_reports_swbreak_with_thread_and_pc() -> None:
    stub, t = connect()
    ask(stub, b"Z0,1010,4")
    reply = run_to_stop(stub, t, b"vCont;c")
    assert reply == b"T05thread:1;swbreak:;20:00001010;01:00004ff0;21:00029000;"


def test_hardware_breakpoint_and_watchpoints_report_their_fields() -> None:
    stub, t = connect()
    t.accesses[0x1008] = (0x2004, "w")
    t.accesses[0x1010] = (0x2004, "r")
    ask(stub, b"Z2,2004,4")
    assert run_to_stop(stub, t, b"c").startswith(b"T05thread:1;watch:2004;20:00001008;")
    ask(stub, b"z2,2004,4")
    ask(stub, b"Z3,2004,4")
    assert run_to_stop(stub, t, b"c").startswith(b"T05thread:1;rwatch:2004;")
    ask(stub, b"Z1,1020,4")
    ask(stub, b"z3,2004,4")
    assert run_to_stop(stub, t, b"c").startswith(b"T05thread:1;hwbreak:;20:00001020;")


def test_a_step_reply_carries_the_thread_id() -> None:
    # gdbstub issue 196: a step stop without a thread id makes GDB switch threads.
    stub, t = connect(vcpus=2)
    reply = run_to_stop(stub, t, b"vCont;s:2;c")
    assert reply.startswith(b"T05thread:2;20:00001104;")
    assert t.count.resume[-1] == {1: ResumeAction(step=True), 0: ResumeAction(step=False)}


def test_a_range_step_reaches_the_target_with_its_range_and_the_others_continue() -> None:
    stub, t = connect(vcpus=2)
    assert ask1(stub, b"vCont?") == b"vCont;c;C;s;S;r"
    reply = run_to_stop(stub, t, b"vCont;r1100,1110:2;c")
    assert reply.startswith(b"T05thread:2;20:00001104;")
    assert t.count.resume[-1] == {
        1: ResumeAction(step=True, range=(0x1100, 0x1110)),
        0: ResumeAction(step=False),
    }


@pytest.mark.parametrize(
    "body", [b"vCont;r1100:1", b"vCont;r1110,1100:1", b"vCont;r1100,1100:1", b"vCont;rx,1:1"]
)
def test_a_malformed_range_step_gets_einval_and_nothing_runs(body: bytes) -> None:
    stub, t = connect()
    pc = t.regs[0][PC]
    assert ask1(stub, body) == E_INVAL
    assert stub.state is StubState.IDLE and t.count.resume == [] and t.regs[0][PC] == pc


def test_vcont_actions_apply_leftmost_first_and_thread_0_means_the_last_stop() -> None:
    stub, t = connect(vcpus=3)
    ask(stub, b"Z0,1010,4")
    run_to_stop(stub, t, b"vCont;c:1")
    assert t.count.resume[-1] == {0: ResumeAction(step=False)}
    run_to_stop(stub, t, b"vCont;s:0;c:-1")
    assert t.count.resume[-1] == {i: ResumeAction(step=i == 0) for i in range(3)}


def test_legacy_s_steps_only_the_Hc_thread_and_c_continues_all() -> None:
    stub, t = connect(vcpus=2)
    assert ask1(stub, b"Hc2") == b"OK"
    assert run_to_stop(stub, t, b"s").startswith(b"T05thread:2;")
    assert t.count.resume[-1] == {1: ResumeAction(step=True)}
    ask(stub, b"Z0,1200,4")
    run_to_stop(stub, t, b"c")
    assert t.count.resume[-1] == {0: ResumeAction(), 1: ResumeAction()}


def test_continue_from_an_address_moves_the_pc_first() -> None:
    stub, t = connect()
    run_to_stop(stub, t, b"s2000")
    assert t.regs[0][PC] == 0x2004


def test_step_on_a_target_that_cannot_step_is_refused_and_nothing_runs() -> None:
    no_step = DebugCapabilities(
        hw_breakpoints=2, hw_watchpoints=2, single_step=False, sw_break_size=4
    )
    stub, t = connect(MemTarget(caps=no_step))
    assert ask1(stub, b"vCont?") == b"vCont;c;C"
    assert ask1(stub, b"vCont;s:1") == E_OPNOTSUPP  # GDB sends it unadvertised (gdbstub #89)
    assert ask1(stub, b"s") == E_OPNOTSUPP
    assert ask1(stub, b"vCont;r1000,1010:1") == E_OPNOTSUPP
    assert stub.state is StubState.IDLE and t.count.resume == []


def test_resume_naming_an_unknown_thread_is_refused_and_nothing_runs() -> None:
    stub, t = connect(vcpus=2)
    assert ask1(stub, b"vCont;s:5") == E_SRCH
    assert stub.state is StubState.IDLE and t.count.resume == []


def test_ctrl_c_interrupts_a_running_guest_and_reports_sigint() -> None:
    stub, t = connect()
    assert ask(stub, b"vCont;c") == []
    assert t.running
    assert stub.receive(b"\x03") == b""
    assert t.count.interrupt == 1
    ev = t.wait_stop(1.0)
    assert ev is not None
    assert split_output(stub.report_stop(ev))[1] == [
        b"T02thread:1;20:00001000;01:00004ff0;21:00029000;"
    ]


def test_ctrl_c_while_stopped_does_nothing() -> None:
    stub, t = connect()
    assert stub.receive(b"\x03\x03") == b""
    assert t.count.interrupt == 0
    assert stub.state is StubState.IDLE


def test_packets_while_running_are_refused_busy_and_do_not_touch_the_target() -> None:
    stub, t = connect()
    ask(stub, b"vCont;c")
    assert ask(stub, b"g") == [E_BUSY]
    assert ask(stub, b"M1000,1:00") == [E_BUSY]
    assert t.memory[0] == 0x60
    assert stub.state is StubState.RUNNING


def test_a_stop_reported_while_idle_is_not_sent() -> None:
    stub, t = connect()
    ev = t.attach()
    assert stub.report_stop(ev) == b""


# -- threads -------------------------------------------------------------------------------


def test_thread_list_names_every_vcpu_in_one_reply() -> None:
    stub, _ = connect(vcpus=4)
    assert ask1(stub, b"qfThreadInfo") == b"m1,2,3,4"
    assert ask1(stub, b"qsThreadInfo") == b"l"
    assert ask1(stub, b"T4") == b"OK"
    assert ask1(stub, b"T5") == E_SRCH
    assert ask1(stub, b"qC") == b"QC1"
    name = bytes.fromhex(ask1(stub, b"qThreadExtraInfo,3").decode())
    assert name == b"vcpu2 (memtarget)"


def test_a_long_thread_list_continues_on_qsthreadinfo() -> None:
    t = MemTarget(vcpus=300, size=0x20000)
    stub = GdbStub(t, packet_size=MIN_PACKET_SIZE)
    stub.connection_made()
    tids: list[int] = []
    reply = ask1(stub, b"qfThreadInfo")
    while reply != b"l":
        assert reply.startswith(b"m") and len(reply) <= MIN_PACKET_SIZE
        tids += [int(x, 16) for x in reply[1:].split(b",")]
        reply = ask1(stub, b"qsThreadInfo")
    assert tids == list(range(1, 301))


# -- connection ----------------------------------------------------------------------------


def test_qattached_is_1_so_quitting_gdb_detaches() -> None:
    stub, _ = connect()
    assert ask1(stub, b"qAttached") == b"1"


def test_detach_calls_target_detach_once_and_closes() -> None:
    stub, t = connect()
    ask(stub, b"Z0,1010,4")
    assert ask1(stub, b"D") == b"OK"
    assert stub.state is StubState.CLOSING
    assert t.count.detach == 1 and t.point_refs() == {}
    assert stub.receive(make_packet(b"D")) == b""  # nothing more is served
    stub.connection_lost()
    assert t.count.detach == 1


def test_kill_detaches_without_a_reply_and_vkill_with_ok() -> None:
    stub, t = connect()
    assert split_output(stub.receive(make_packet(b"k"))) == ([b"+"], [])
    assert t.count.detach == 1 and stub.state is StubState.CLOSING
    stub2, t2 = connect()
    assert ask1(stub2, b"vKill;1") == b"OK"
    assert t2.count.detach == 1


def test_connection_lost_while_running_stops_the_guest_then_detaches_once() -> None:
    stub, t = connect()
    ask(stub, b"vCont;c")
    assert t.running
    stub.connection_lost()
    stub.connection_lost()
    assert t.count.interrupt == 1
    assert (t.count.detach, t.count.detach_refused) == (1, 0)


def test_connection_lost_while_idle_detaches_once() -> None:
    stub, t = connect()
    stub.connection_lost()
    assert t.count.detach == 1 and t.count.interrupt == 0


# -- monitor and target description --------------------------------------------------------


def _monitor(stub: GdbStub, command: str) -> tuple[str, bytes]:
    replies = ask(stub, b"qRcmd," + command.encode().hex().encode())
    console = "".join(bytes.fromhex(r[1:].decode()).decode() for r in replies[:-1])
    assert all(r.startswith(b"O") for r in replies[:-1])
    return console, replies[-1]


def test_monitor_runs_whitelisted_commands_and_refuses_others_with_a_message() -> None:
    stub, _ = connect()
    ask(stub, b"Z0,1010,4")
    assert _monitor(stub, "points") == ("swbreak mem:0x1010/4\n", b"OK")
    text, final = _monitor(stub, "python import os")
    assert "unknown monitor command" in text and final == E_INVAL


def test_long_monitor_output_is_split_into_console_packets_that_fit() -> None:
    class Chatty(MemTarget):
        def monitor(self, command: str) -> str:
            return "x" * 5000

    stub, _ = connect(Chatty())
    replies = ask(stub, b"qRcmd," + b"help".hex().encode())
    assert len(replies) >= 4 and replies[-1] == b"OK"
    console = "".join(bytes.fromhex(r[1:].decode()).decode() for r in replies[:-1])
    assert console == "x" * 5000 + "\n"


def test_target_xml_read_in_chunks_reassembles_to_the_arch_description() -> None:
    stub, t = connect()
    got = b""
    while True:
        reply = ask1(stub, b"qXfer:features:read:target.xml:%x,%x" % (len(got), 100))
        assert reply[:1] in (b"m", b"l") and len(reply) <= 101
        got += reply[1:]
        if reply[:1] == b"l":
            break
    assert got.decode() == target_xml(t.gdb_arch)
    assert ask1(stub, b"qXfer:features:read:target.xml:ffff,10") == b"l"
    assert ask1(stub, b"qXfer:features:read:other.xml:0,10") == E_INVAL


# -- robustness ----------------------------------------------------------------------------


def test_a_bug_in_the_target_is_answered_with_an_error_and_counted() -> None:
    class Broken(MemTarget):
        def read_memory(self, vcpu: int, addr: int, length: int) -> bytes:
            raise RuntimeError("boom")

    stub, _ = connect(Broken())
    assert ask1(stub, b"m1000,4") == b"E01"
    assert stub.ctx.internal_errors == 1
    assert ask1(stub, b"qAttached") == b"1"


@pytest.mark.parametrize("size", [MIN_PACKET_SIZE - 1, 0])
def test_packet_size_below_the_minimum_is_refused(size: int) -> None:
    with pytest.raises(ValueError):
        GdbStub(MemTarget(), packet_size=size)


def test_run_length_option_compresses_text_replies_to_the_same_content() -> None:
    t = MemTarget()
    plain, packed = GdbStub(t), GdbStub(t, run_length=True)
    for stub in (plain, packed):
        stub.connection_made()
    raw_plain = plain.receive(make_packet(b"m1000,40"))
    raw_packed = packed.receive(make_packet(b"m1000,40"))
    assert len(raw_packed) < len(raw_plain)
    assert split_output(raw_packed) == split_output(raw_plain)
    xml_plain = plain.receive(make_packet(b"qXfer:features:read:target.xml:0,400"))
    xml_packed = packed.receive(make_packet(b"qXfer:features:read:target.xml:0,400"))
    assert xml_plain == xml_packed  # binary replies are never run-length encoded


def test_a_halt_with_a_reason_prints_it_on_the_console_just_before_the_stop() -> None:
    """GDB shows ``O`` packets only while it waits for a stop (remote.c remote_wait_as), so the
    reason goes out right before that stop's reply, and never before a reply to a request."""
    stub, _ = connect()
    assert ask(stub, b"vCont;c") == []
    halt = StopEvent(0, StopReason(StopKind.HALT, 0x1000, why="KVM_EXIT_HLT on vCPU 0"))
    replies = split_output(stub.report_stop(halt))[1]
    assert [bytes.fromhex(r[1:].decode()).decode() for r in replies[:-1]] == [
        "guestdbg: KVM_EXIT_HLT on vCPU 0\n"
    ]
    assert replies[-1].startswith(b"T00thread:1;")
    assert ask(stub, b"?")[0].startswith(b"T00thread:1;")  # the stop again, without the text
