"""Serving ``qXfer:features:read:target.xml``: the description built once from the arch's
register list (so ``g`` order and the XML cannot disagree), sent in ``m``/``l`` chunks."""

from __future__ import annotations

from ...errors import InvalidRequest
from ..commands.target_xml import ReadFeatures
from ..context import StubContext
from ..wire import BinaryReply, escape_binary

ANNEX = "target.xml"


def read_features(ctx: StubContext, cmd: ReadFeatures) -> BinaryReply:
    if cmd.annex != ANNEX:
        raise InvalidRequest(f"no feature document {cmd.annex[:40]!r}; there is only {ANNEX}")
    xml = ctx.xml
    room = ctx.features.packet_size - 1
    length = min(cmd.length, room)
    chunk = xml[cmd.offset : cmd.offset + length]
    body = escape_binary(chunk)
    while len(body) > room:
        chunk = chunk[: len(chunk) // 2]
        body = escape_binary(chunk)
    more = cmd.offset + len(chunk) < len(xml) and len(chunk) > 0
    return BinaryReply((b"m" if more else b"l") + body)


HANDLERS = {ReadFeatures: read_features}
