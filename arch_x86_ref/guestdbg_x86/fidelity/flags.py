"""The six x86 status flags, and which of them an instruction leaves undefined.

The SDM leaves some status flags undefined after some instructions (vol. 2, each instruction's
"Flags Affected"): SF/ZF/AF/PF after MUL and IMUL, AF after AND/OR/XOR/TEST and shifts, OF after
a shift or rotate by more than one, OF/SF/AF/PF after BT/BTS/BTR/BTC, all six after DIV and
IDIV, all but ZF after BSF/BSR. Real hardware computes *something* for them (KVM's emulator runs
the host CPU's own instruction, ``emulate.c`` fastops) and QEMU's TCG computes something else,
so a difference there is no bug. The generator tracks, for every instruction address of a
program, which flags may be undefined when RIP is there (:attr:`Program.undefined_flags`), never
lets an instruction read them (a flag-defining instruction is put in between), and the
differential explains an RFLAGS difference confined to them as ``x86-undefined-flags``.
"""

from __future__ import annotations

CF = 0x1
PF = 0x4
AF = 0x10
ZF = 0x40
SF = 0x80
OF = 0x800
STATUS = CF | PF | AF | ZF | SF | OF
"""The arithmetic status flags: what an ADD or SUB defines, all six."""
LOGIC = CF | PF | ZF | SF | OF
"""What AND/OR/XOR/TEST define (AF is undefined)."""
DF = 0x400
TF = 0x100
RF = 0x10000

CONDITIONS: dict[str, int] = {
    "o": OF, "no": OF, "b": CF, "ae": CF, "e": ZF, "ne": ZF, "be": CF | ZF, "a": CF | ZF,
    "s": SF, "ns": SF, "p": PF, "np": PF, "l": SF | OF, "ge": SF | OF, "le": ZF | SF | OF,
    "g": ZF | SF | OF,
}  # fmt: skip
"""Condition code suffix -> the flags Jcc/SETcc/CMOVcc read (SDM vol. 1 app. B)."""
