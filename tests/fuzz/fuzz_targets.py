"""The coverage-guided fuzz targets (issue 13): what ``bench/fuzz.py`` drives with atheris and
what ``test_fuzz_corpus.py`` replays from the corpus in the repository.

A target is a function ``one_input(data: bytes) -> None`` that returns for every input the code
handled as it documents, and raises :class:`Crash` (with what went wrong) for anything else:

``rsp``
    GDB's byte stream into the stub's state machine (``GdbStub.receive``: frame scan, packet
    parsing in ``commands/``, the handlers) over the in-process test target, with the stops a
    resume produces reported as the server reports them. The documented error path is a reply:
    a crash is an exception escaping the stub, an internal error it counted
    (``StubContext.internal_errors``: an exception a handler or parser did not mean), output
    that is not acks and well-framed packets, a frame reader holding more than ``PacketSize``,
    or a connection end that does not detach exactly once and leave no point behind.

``migration``
    A JSON text into the migration-document loader, through its public entry only
    (``Session.restore`` on an emulated e500mc VM with two vCPUs and one planted trap word;
    the session internals are a black box here). The documented error path is a
    :class:`~guestdbg.errors.GuestDebugError` (``MigrationError``); any other exception is a
    crash. Text that is not JSON is not the loader's input and is skipped.

``agent_expr``
    GDB agent-expression bytecode (a breakpoint condition's ``;X`` part) into the interpreter
    (``guestdbg.conditions``): parsed, and when it parses evaluated against a small guest
    (registers, RAM with recording callbacks; the byte order, address width and values
    chosen by the input's CRC). The documented error paths are ``BadExpression`` from the
    parser and ``EvalError`` from the evaluation; a crash is anything else, an internal
    error, or a run that breaks a rule of ``tests/conditions/exprfuzz.py`` (a register read
    validation did not list, memory read outside the address width or when validation said
    none, guest RAM changed, the two ways of running disagreeing). The corpus starts from
    conditions GDB compiles.

A *hang* is an input running longer than the bound ``bench/fuzz.py`` sets (``--hang-seconds``);
the test replays the corpus under the same kind of bound.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
CORPUS = HERE / "corpus"
sys.path[:0] = [str(TESTS / "gdb"), str(TESTS / "conditions")]

OneInput = Callable[[bytes], None]


class Crash(Exception):
    """An input the code under test did not handle as it documents."""


class Hang(BaseException):
    """Raised by the hang bound's alarm (a BaseException: the code under test's own
    ``except Exception`` must not swallow it)."""


# -- rsp: the packet parser and the stub's state machine ------------------------------------


def _check_output(out: bytes) -> None:
    """Acks, nacks and ``$body#cs`` packets with their right checksum, nothing else."""
    i, n = 0, len(out)
    while i < n:
        c = out[i]
        if c in b"+-":
            i += 1
            continue
        if c != 0x24:
            raise Crash(f"junk in the stub's output at {i}: {out[i : i + 20]!r}")
        end = out.find(b"#", i)
        if end < 0 or end + 3 > n:
            raise Crash(f"unterminated packet in the stub's output: {out[i : i + 40]!r}")
        body = out[i + 1 : end]
        if b"$" in body:
            raise Crash(f"'$' inside a reply body: {body[:40]!r}")
        if out[end + 1 : end + 3] != b"%02x" % (sum(body) & 0xFF):
            raise Crash(f"bad checksum on a reply: {out[i : end + 3][:60]!r}")
        i = end + 3


def rsp_target() -> OneInput:
    """The first byte chooses how the rest is cut into reads (bit 7: all at once; else bits
    0-5: 16-1008 bytes, or 1 when they are 0) and the advertised ``PacketSize`` (bit 6: the
    smallest allowed, so oversized packets and replies cut to size are near); after each read
    a stop the target has is reported, as ``GdbServer`` does."""
    from memtarget import MemTarget

    from guestdbg.gdb.context import StubState
    from guestdbg.gdb.features import MIN_PACKET_SIZE
    from guestdbg.gdb.stub import GdbStub

    def one_input(data: bytes) -> None:
        target = MemTarget(vcpus=2)
        target.accesses[0x1100] = (0x2000, "w")
        if not data:
            data = b"\x80"
        head = data[0]
        stub = GdbStub(target, packet_size=MIN_PACKET_SIZE if head & 0x40 else 4096)
        stub.connection_made()
        cut = len(data) if head & 0x80 else ((head & 0x3F) * 16 or 1)
        limit = stub.ctx.features.packet_size
        try:
            for at in range(1, len(data), cut):
                _check_output(stub.receive(data[at : at + cut]))
                if stub._reader.buffered > limit:
                    raise Crash(f"the frame reader holds {stub._reader.buffered} > {limit}")
                if stub.state is StubState.RUNNING:
                    ev = target.wait_stop(0)
                    if ev is not None:
                        _check_output(stub.report_stop(ev))
            stub.connection_lost()
        except Crash:
            raise
        except Exception as e:
            raise Crash(f"the stub raised {type(e).__name__}: {e}") from e
        if stub.ctx.internal_errors:
            raise Crash(f"{stub.ctx.internal_errors} internal error(s) (see the log)")
        if target.count.detach != 1 or target.count.detach_refused:
            raise Crash(
                f"the connection ended with {target.count.detach} detach(es), "
                f"{target.count.detach_refused} refused"
            )
        if target.point_refs():
            raise Crash(f"points left after the detach: {target.point_refs()}")

    return one_input


# -- migration: the debug-state document loader ---------------------------------------------

MIGRATION_GUEST = "session_reinject_smp"
MIGRATION_SMP = 2


@functools.cache
def migration_vm() -> object:
    """The destination VM: the guest loaded, two vCPUs, a trap word at ``unused`` (what a
    migrated VM with one software breakpoint holds), and the seed document a real session on
    it saves (:func:`migration_seed`)."""
    from guestdbg.plugins import default_registry
    from guestdbg.points import DebugPoint, PointKind
    from guestdbg.session import Session
    from guestdbg_booke.guests import build

    root = TESTS.parent
    elf = build(TESTS / "guests" / "ppc" / f"{MIGRATION_GUEST}.S", root / "tests/guests/build/ppc")
    vm = default_registry().emulated_host("e500mc").create_vm(str(elf), smp=MIGRATION_SMP)
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        sym = {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}  # type: ignore[union-attr]
    s = Session(vm, "e500mc")
    s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["unused"], 4))
    s.insert_point(DebugPoint(PointKind.SW_BREAK, sym["unused"], 4))
    s.insert_point(DebugPoint(PointKind.HW_BREAK, sym["done"], 4))
    s.insert_point(DebugPoint(PointKind.WATCH_WRITE, sym["handled"], 4))
    vm.fuzz_seed = json.dumps(s.save_state(), sort_keys=True)  # type: ignore[attr-defined]
    s.close()  # the trap word stays: the VM is what a migration brings over
    return vm


def migration_seed() -> str:
    return migration_vm().fuzz_seed  # type: ignore[attr-defined, no-any-return]


def migration_target() -> OneInput:
    from guestdbg.errors import GuestDebugError
    from guestdbg.session import Session

    vm = migration_vm()

    def one_input(data: bytes) -> None:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            return  # not JSON: not the loader's input
        try:
            s = Session.restore(vm, doc)  # type: ignore[arg-type]
        except GuestDebugError:
            return
        except Exception as e:
            raise Crash(f"Session.restore raised {type(e).__name__}: {e}") from e
        s.close()

    return one_input


# -- agent_expr: GDB agent expressions --------------------------------------------------------


def agent_expr_target() -> OneInput:
    import zlib

    from exprfuzz import Broken, check

    def one_input(data: bytes) -> None:
        try:
            check(data, zlib.crc32(data))
        except Broken as e:
            raise Crash(str(e)) from e

    return one_input


# -- the list -------------------------------------------------------------------------------

PENDING = "pending"


@dataclass(frozen=True)
class Target:
    name: str
    make: Callable[[], OneInput]
    status: str = "ready"
    instrument: tuple[str, ...] = ("guestdbg",)
    """Packages atheris instruments for coverage (their modules and submodules)."""
    skip: tuple[str, ...] = ()
    """Modules left uninstrumented: hot paths the target does not fuzz (instrumenting them
    only slows every input)."""
    max_len: int = 2048

    @property
    def corpus(self) -> Path:
        return CORPUS / self.name

    @property
    def ready(self) -> bool:
        return self.status != PENDING


TARGETS = {
    t.name: t
    for t in (
        Target("rsp", rsp_target, max_len=512),  # 10-30 packets: every state, 4x the inputs
        Target(
            "migration",
            migration_target,
            skip=("guestdbg.kvm.uapi", "guestdbg.plugins"),  # struct layouts, per vCPU
            max_len=4096,
        ),
        Target("agent_expr", agent_expr_target, instrument=("guestdbg.conditions",), max_len=512),
    )
}
