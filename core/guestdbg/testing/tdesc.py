"""Check 5: the target description parses and agrees with the ``g`` packet.

GDB lays out the ``g`` reply by the description alone (regnum order, bitsize), so a register
list and XML that disagree, or a ``g`` reply of another length, shift every register after the
first mismatch. The XML is fetched through the stub (``qXfer:features:read``) and the ``g``
reply is built by the stub from a live vCPU, as GDB would see both.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..gdb.stub import GdbStub
from ..gdb.target import GdbArch
from ..gdb.wire import unescape_binary
from ..session.session import Session

_CHUNK = 0x400


@dataclass(frozen=True)
class TdescRegister:
    name: str
    bitsize: int
    regnum: int


def fetch_target_xml(stub: GdbStub) -> str:
    """``qXfer:features:read:target.xml`` chunk by chunk, as GDB reads it."""
    out = b""
    while True:
        reply = stub.handle_packet(
            f"qXfer:features:read:target.xml:{len(out):x},{_CHUNK:x}".encode()
        )
        assert reply and reply[:1] in (b"m", b"l"), f"qXfer target.xml answered {reply!r}"
        out += unescape_binary(bytes(reply[1:]))
        if reply[:1] == b"l":
            return out.decode()


def parse_registers(xml: str) -> tuple[str | None, list[TdescRegister]]:
    """(architecture, registers in regnum order) of a single-document description."""
    root = ET.fromstring(xml)
    assert root.tag == "target", f"the description's root is <{root.tag}>, not <target>"
    arch = root.findtext("architecture")
    regs = []
    expected = 0
    for reg in root.iter("reg"):
        regnum = int(reg.get("regnum", expected))
        regs.append(TdescRegister(reg.get("name", ""), int(reg.get("bitsize", "0")), regnum))
        expected = regnum + 1
    return arch, regs


def check_matches_register_list(gdb_arch: GdbArch, regs: list[TdescRegister]) -> None:
    listed = [(r.name, r.bitsize, n) for n, r in enumerate(gdb_arch.registers)]
    described = [(r.name, r.bitsize, r.regnum) for r in regs]
    assert described == listed, (
        "the target description and the g-packet register list disagree; first difference: "
        + next(
            (f"{d} != {g}" for d, g in zip(described, listed, strict=False) if d != g),
            f"{len(described)} described, {len(listed)} listed",
        )
    )
    count = len(listed)
    for what, n in (("pc_regnum", gdb_arch.pc_regnum), ("sp_regnum", gdb_arch.sp_regnum)):
        assert 0 <= n < count, f"{what} {n} is not a register (there are {count})"
    bad = [n for n in gdb_arch.expedite if not 0 <= n < count]
    assert not bad, f"expedited registers {bad} do not exist"
    odd = [r.name for r in regs if r.bitsize <= 0 or r.bitsize % 8]
    assert not odd, f"registers whose bitsize is not a whole number of bytes: {odd}"


def open_stub(session: Session) -> GdbStub:
    """A stub on ``session`` as a GDB connection would find it (no socket)."""
    stub = GdbStub(session)
    stub.connection_made()
    return stub


def check_g_reply(stub: GdbStub, regs: list[TdescRegister]) -> None:
    """A ``g`` reply from vCPU 0 has exactly sum(bitsize)/4 hex digits (``x`` for unavailable)."""
    reply = stub.handle_packet(b"g") or b""
    want = sum(r.bitsize for r in regs) // 4
    assert len(reply) == want, (
        f"the g reply has {len(reply)} hex digits; the description's registers need {want}"
        + (f" (reply {reply[:12]!r})" if reply.startswith(b"E") else "")
    )
    assert all(c in b"0123456789abcdefx" for c in reply), f"the g reply is not hex: {reply[:40]!r}"
