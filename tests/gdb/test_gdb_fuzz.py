"""Fuzz: over 100,000 random, malformed and mutated packets into the stub (no socket).

The stub must answer every packet with an ack/nack, an error, the empty reply, or (for a
well-formed command) its real answer; never raise, never leave an internal error. A model
applies exactly the effects of the commands the stub answered ``OK`` (memory, registers,
points, thread selection, detach), and after every example the target must equal the model:
a refused or garbled packet changed nothing, an accepted one changed exactly what it said.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from memtarget import PC, REGISTERS, MemTarget
from rsp_client import make_packet, split_output

from guestdbg.gdb.context import StubState
from guestdbg.gdb.stub import GdbStub
from guestdbg.points import DebugPoint, PointKind

BASE, SIZE, VCPUS = 0x1000, 0x1000, 2
PACKETS_WANTED = 100_000
T = TypeVar("T")
RESYNC = b"##00"
"""Whatever state random bytes left the frame reader in, this brings it back between packets."""

# -- what the generator produces -------------------------------------------------------------
#
# One generator, two sources of choices: hypothesis (every choice a draw, so a failure shrinks
# to a minimal stream) and a seeded random.Random that hypothesis seeds (about fifty times
# cheaper per packet, which is what makes 100,000 packets take seconds; a failure is reported
# with its seed).

Effect = tuple[object, ...]
Item = tuple[str, bytes, Effect, bool]
"""(kind, bytes, effect for the model, deliver a pending stop afterwards)."""


class Pick(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...

    def binary(self, max_size: int) -> bytes: ...


class RandomPick:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def binary(self, max_size: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, max_size))


class HypothesisPick:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(options))

    def binary(self, max_size: int) -> bytes:
        return self.data.draw(st.binary(max_size=max_size))


def _hex32(v: int) -> bytes:
    return b"%08x" % v


def _escape(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


EDGES = (0, BASE, BASE + 0x10, BASE + SIZE - 4, 2**64 - 4)
THREADS = (b"0", b"-1", b"1", b"2", b"3", b"p1.2", b"ff")
RESUMES = (b"c", b"s", b"vCont;c", b"vCont;s:1", b"vCont;s:2;c", b"vCont;c:2", b"C05", b"S05",
           b"vCont;s:0", b"vCont;c:5", b"s1100", b"c1200", b"vCont;r1000,1100:1;c",
           b"vCont;r1100,1000:2")  # fmt: skip
QUERIES = (b"?", b"g", b"qC", b"qfThreadInfo", b"qsThreadInfo", b"vCont?", b"qAttached",
           b"QStartNoAckMode", b"qSupported:swbreak+;hwbreak+", b"qThreadExtraInfo,2")  # fmt: skip
MONITOR = ("help", "points", "stats", "policy", "shell ls", "")
MUTATION_BYTES = tuple(bytes((c,)) for c in b"gGzZ;:,=+ !~x")
"""No "-": inserted into a thread id it can make "-1", which is valid."""
SIDE_EFFECT_LETTERS = b"MXPGZzH"
"""Random bodies never start with these: a random body that happened to be a valid write
would change state the model cannot know about."""


def _addr(p: Pick) -> int:
    if p.integer(0, 3) == 0:
        return p.choice(EDGES)
    return p.integer(BASE - 16, BASE + SIZE + 16)


def command(p: Pick) -> tuple[bytes, Effect]:
    """A well-formed command (it may still be refused: bad address, no slot...)."""
    kind = p.integer(0, 15)
    if kind in (0, 1):
        addr, data = _addr(p), p.binary(24)
        payload = data.hex().encode() if kind == 0 else _escape(data)
        return b"%b%x,%x:%b" % (b"MX"[kind : kind + 1], addr, len(data), payload), (
            "mem", addr, data
        )  # fmt: skip
    if kind == 2:
        n, v = p.integer(0, 40), p.integer(0, 2**32 - 1)
        return b"P%x=%b" % (n, _hex32(v)), ("reg", n, v)
    if kind == 3:
        values = [None if p.integer(0, 7) == 0 else p.integer(0, 2**32 - 1) for _ in REGISTERS]
        text = b"".join(b"xxxxxxxx" if v is None else _hex32(v) for v in values)
        return b"G" + text, ("regs", {n: v for n, v in enumerate(values) if v is not None})
    if kind in (4, 5):
        t, addr, length = p.integer(0, 5), _addr(p), p.choice((0, 1, 2, 3, 4, 8))
        letter = b"Z" if kind == 4 else b"z"
        return b"%b%x,%x,%x" % (letter, t, addr, length), ("point", kind == 4, t, addr, length)
    if kind == 6:
        tid = p.choice(THREADS)
        return b"Hg" + tid, ("hg", tid)
    if kind == 7:
        return p.choice(RESUMES), ("resume",)
    if kind == 8:
        return p.choice((b"D", b"k", b"vKill;1", b"D;1")), ("detach",)
    if kind == 9:
        return b"m%x,%x" % (_addr(p), p.integer(0, 0x3000)), ("none",)
    if kind == 10:
        return b"p%x" % p.integer(0, 40), ("none",)
    if kind == 11:
        return b"qRcmd," + p.choice(MONITOR).encode().hex().encode(), ("none",)
    if kind == 12:
        span = p.integer(0, 0x800), p.integer(0, 0x2000)
        return b"qXfer:features:read:target.xml:%x,%x" % span, ("none",)
    if kind in (13, 14):
        return (b"Hc", b"T")[kind - 13] + p.choice(THREADS), ("none",)
    return p.choice(QUERIES), ("none",)


def mutated(p: Pick) -> bytes:
    """A command with one stray character inserted after its first: always malformed, except
    ``qSupported``, whose feature list GDB may extend at will (unknown features are ignored)."""
    body, _ = command(p)
    while body.startswith(b"qSupported"):
        body, _ = command(p)
    at = p.integer(1, len(body))
    return body[:at] + p.choice(MUTATION_BYTES) + body[at:]


def item(p: Pick) -> Item:
    roll = p.integer(0, 5)
    deliver = p.integer(0, 1) == 1
    if roll <= 2:
        body, effect = command(p)
        return ("cmd", body, effect, deliver)
    if roll == 3:
        return ("mut", mutated(p), ("malformed",), deliver)
    if roll == 4:
        first = p.integer(0, 255)
        while first in SIDE_EFFECT_LETTERS or first in b"#$":
            first = p.integer(0, 255)
        rest = p.binary(40).replace(b"#", b"").replace(b"$", b"")
        return ("frame", bytes((first,)) + rest, ("random",), deliver)
    raw = p.choice((b"\x03", b"-", b"+", b"")) or p.binary(48) or b"\x00"
    return ("raw", raw, ("raw",), deliver)


# -- the model -------------------------------------------------------------------------------


@dataclass
class Model:
    memory: bytearray
    regs: list[list[int]]
    points: dict[DebugPoint, int] = field(default_factory=dict)
    hg: bytes = b"0"
    stop_vcpu: int = 0

    def vcpu(self) -> int:
        if self.hg in (b"0", b"-1"):
            return self.stop_vcpu
        tid = int(self.hg[self.hg.index(b".") + 1 :] if b"." in self.hg else self.hg, 16)
        return tid - 1

    def apply_ok(self, effect: Effect) -> None:
        kind = effect[0]
        if kind == "mem":
            addr, data = effect[1], effect[2]
            assert isinstance(addr, int) and isinstance(data, bytes)
            self.memory[addr - BASE : addr - BASE + len(data)] = data
        elif kind == "reg":
            n, v = effect[1], effect[2]
            assert isinstance(n, int) and isinstance(v, int)
            self.regs[self.vcpu()][n] = v
        elif kind == "regs":
            values = effect[1]
            assert isinstance(values, dict)
            for n, v in values.items():
                self.regs[self.vcpu()][n] = v
        elif kind == "point":
            insert, t, addr, length = effect[1:]
            assert isinstance(t, int) and isinstance(addr, int) and isinstance(length, int)
            p = DebugPoint(PointKind.from_gdb_type(t), addr, length)
            self.points[p] = self.points.get(p, 0) + (1 if insert else -1)
            if not self.points[p]:
                del self.points[p]
        elif kind == "hg":
            hg = effect[1]
            assert isinstance(hg, bytes)
            self.hg = hg
        else:
            raise AssertionError(f"{effect} cannot be answered OK")

    def stopped(self, reply: bytes) -> None:
        tid = reply[reply.index(b"thread:") + 7 : reply.index(b";")]
        self.stop_vcpu = int(tid, 16) - 1
        self.hg = b"0"


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Run:
    target: MemTarget
    stub: GdbStub
    model: Model
    packets: int = 0
    internal_errors: int = 0

    def connect(self) -> None:
        self.stub = GdbStub(self.target)
        self.stub.connection_made()
        self.model.hg, self.model.stop_vcpu = b"0", 0

    def feed(self, data: bytes) -> list[bytes]:
        signals, bodies = split_output(self.stub.receive(data))
        assert all(s in (b"+", b"-") for s in signals)
        return bodies

    def settle(self, deliver: bool) -> None:
        """Report a stop if one is due; interrupt a free-running guest when asked to."""
        stub, t = self.stub, self.target
        if stub.state is StubState.CLOSING:
            self.internal_errors += stub.ctx.internal_errors
            stub.connection_lost()
            self.model.points.clear()
            self.connect()
            return
        if stub.state is not StubState.RUNNING or not deliver:
            return
        if t.running:
            self.feed(b"\x03")
        ev = t.wait_stop(0)
        assert ev is not None, "a running guest that was interrupted must report a stop"
        (reply,) = split_output(stub.report_stop(ev))[1]
        assert reply.startswith((b"T05thread:", b"T02thread:")), reply
        self.model.stopped(reply)

    def step(self, it: Item) -> None:
        kind, payload, effect, deliver = it
        if kind == "raw":
            self.feed(payload)
            self.feed(RESYNC)
        else:
            self.packets += 1
            was_running = self.stub.state is StubState.RUNNING
            replies = self.feed(make_packet(payload))
            if replies:
                reply = replies[-1]
                if was_running:
                    assert reply == b"E10", reply
                elif kind != "cmd":
                    assert reply == b"" or reply[:1] == b"E" or effect == ("random",), reply
                if kind == "cmd" and reply == b"OK" and effect[0] not in ("none", "detach"):
                    self.model.apply_ok(effect)
        self.settle(deliver)

    def check(self) -> None:
        stub = self.stub
        if stub.state is StubState.RUNNING:
            self.settle(True)
        assert stub.state is StubState.IDLE
        self.internal_errors += stub.ctx.internal_errors
        assert self.internal_errors == 0
        for v in range(VCPUS):
            assert self.feed(make_packet(b"Hg%x" % (v + 1)))[-1] == b"OK"
            g = self.feed(make_packet(b"g"))[-1]
            got = [int(g[i : i + 8], 16) for i in range(0, len(g), 8)]
            want = list(self.model.regs[v])
            got[PC] = want[PC] = 0  # resumes move the PC; the model does not run code
            assert got == want, f"vCPU {v} registers differ from the model"
        memory = b""
        while len(memory) < SIZE:
            reply = self.feed(make_packet(b"m%x,%x" % (BASE + len(memory), SIZE - len(memory))))
            memory += bytes.fromhex(reply[-1].decode())
        assert memory == bytes(self.model.memory), "memory differs from the model"
        assert self.target.point_refs() == self.model.points


def run_stream(p: Pick, items: int) -> int:
    """Feed ``items`` generated items through a fresh stub; check the model; packets sent."""
    t = MemTarget(vcpus=VCPUS, base=BASE, size=SIZE)
    t.accesses[BASE + 0x40] = (BASE + 0x800, "w")
    run = Run(t, GdbStub(t), Model(bytearray(t.memory), [list(r) for r in t.regs]))
    run.connect()
    for _ in range(items):
        run.step(item(p))
    run.check()
    return run.packets


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_streams_of_packets_leave_the_session_consistent(data: st.DataObject) -> None:
    # the assertions are in run_stream: every reply is checked as it comes, and at the end the
    # target's memory, registers and points against the model
    run_stream(HypothesisPick(data), 40)


SEEDED = {"packets": 0}
STREAMS = 500
STREAM_ITEMS = 250


@settings(max_examples=STREAMS, deadline=None, database=None)
@given(st.integers(0, 2**64 - 1))
def _seeded_stream(seed: int) -> None:
    SEEDED["packets"] += run_stream(RandomPick(seed), STREAM_ITEMS)


def test_over_100k_random_and_malformed_packets_leave_the_session_consistent() -> None:
    SEEDED["packets"] = 0
    _seeded_stream()
    assert SEEDED["packets"] >= PACKETS_WANTED, SEEDED
