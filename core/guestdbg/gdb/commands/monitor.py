"""``qRcmd,<hex>``: a ``monitor`` command. Only printable text is accepted; what it may do is
the target's whitelist (never arbitrary code: QEMU pipes this into HMP, avatar2 into eval())."""

from __future__ import annotations

from dataclasses import dataclass

from .common import PacketError, after_name, parse_hex_bytes

MAX_COMMAND = 256


@dataclass(frozen=True, slots=True)
class MonitorCommand:
    text: str


def parse_qRcmd(body: bytes) -> MonitorCommand:
    raw = parse_hex_bytes(after_name(body, b"qRcmd", b","))
    if len(raw) > MAX_COMMAND or not all(0x20 <= b < 0x7F for b in raw):
        raise PacketError("monitor commands are short printable ASCII text")
    return MonitorCommand(raw.decode("ascii").strip())
