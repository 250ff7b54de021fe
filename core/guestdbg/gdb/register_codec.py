"""Register values to and from ``g``/``p`` hex for one :class:`GdbArch`, widths resolved once.

Same encoding as :func:`~guestdbg.gdb.target.encode_register` (target byte order, ``xx`` for a
value the vCPU cannot give), done as one ``bytes.hex()`` over the whole file when every value
is known, because ``g`` is on GDB's per-stop path.
"""

from __future__ import annotations

from collections.abc import Sequence

from .commands.common import PacketError
from .target import GdbArch
from .wire import HEXDIGITS


class RegisterCodec:
    __slots__ = ("byteorder", "count", "masks", "offsets", "total", "widths")

    def __init__(self, arch: GdbArch) -> None:
        self.byteorder = arch.byteorder
        self.widths = tuple(r.bitsize // 8 for r in arch.registers)
        self.masks = tuple((1 << r.bitsize) - 1 for r in arch.registers)
        offsets = []
        at = 0
        for w in self.widths:
            offsets.append(at)
            at += 2 * w
        self.offsets = tuple(offsets)
        self.total = at
        """Hex characters in a full ``g`` reply."""
        self.count = len(self.widths)

    def encode_all(self, values: Sequence[int | None]) -> bytes:
        if len(values) != self.count:
            raise ValueError(f"target gave {len(values)} registers, the arch has {self.count}")
        order = self.byteorder
        if None not in values:
            raw = b"".join(
                (v & m).to_bytes(w, order)  # type: ignore[operator]
                for v, m, w in zip(values, self.masks, self.widths, strict=True)
            )
            return raw.hex().encode()
        return b"".join(self.encode_one(n, v) for n, v in enumerate(values))

    def encode_one(self, regnum: int, value: int | None) -> bytes:
        w = self.widths[regnum]
        if value is None:
            return b"xx" * w
        return (value & self.masks[regnum]).to_bytes(w, self.byteorder).hex().encode()

    def decode_one(self, regnum: int, text: bytes) -> int | None:
        """None for an all-``x`` value (GDB writing back an unavailable register)."""
        if len(text) != 2 * self.widths[regnum]:
            raise PacketError(
                f"register {regnum} takes {2 * self.widths[regnum]} hex digits, got {len(text)}"
            )
        if not text.strip(b"x"):
            return None
        if text.translate(None, HEXDIGITS):
            raise PacketError(f"bad hex value for register {regnum}")
        return int.from_bytes(bytes.fromhex(text.decode("ascii")), self.byteorder)

    def decode_all(self, text: bytes) -> dict[int, int]:
        """A full ``G`` payload; registers sent as ``xx`` are left out."""
        if len(text) != self.total:
            raise PacketError(f"'G' needs {self.total} hex digits, got {len(text)}")
        out: dict[int, int] = {}
        for n, (at, w) in enumerate(zip(self.offsets, self.widths, strict=True)):
            value = self.decode_one(n, text[at : at + 2 * w])
            if value is not None:
                out[n] = value
        return out
