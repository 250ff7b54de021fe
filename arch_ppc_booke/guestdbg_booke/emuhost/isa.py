"""The few PowerPC instruction encodings the host model must understand.

The engine executes instructions; the model only decodes what the kernel decodes itself: the
privileged instructions it emulates (``emulate.c``, ``booke_emulate.c``, ``e500_emulate.c``),
traps and the software-breakpoint words of the program-interrupt path, the load/store an MMIO
exit completes (``kvmppc_handle_load``/``store``), and, for the branch-taken debug event, whether
a branch will be taken. Field names are the kernel's ``asm/disassemble.h`` ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

OP_TRAP = 3  # twi
OP_TDI = 2  # tdi (64-bit cores)
OP_SC = 17
OP_19 = 19
OP_31 = 31


def get_op(inst: int) -> int:
    return inst >> 26


def get_xop(inst: int) -> int:
    return (inst >> 1) & 0x3FF


def get_rt(inst: int) -> int:
    return (inst >> 21) & 0x1F


get_rs = get_rt


def get_ra(inst: int) -> int:
    return (inst >> 16) & 0x1F


def get_rb(inst: int) -> int:
    return (inst >> 11) & 0x1F


def get_sprn(inst: int) -> int:
    """The 10-bit SPR number of mtspr/mfspr (its two 5-bit halves are swapped in the word)."""
    return ((inst >> 16) & 0x1F) | ((inst >> 6) & 0x3E0)


def get_oc(inst: int) -> int:
    """ehpriv's opcode field (``EHPRIV_OC_SHIFT`` = 11)."""
    return (inst >> 11) & 0x7FFF


def get_d(inst: int) -> int:
    d = inst & 0xFFFF
    return d - 0x10000 if d & 0x8000 else d


def spr_is_privileged(sprn: int) -> bool:
    """Book E: SPR numbers with bit 0x10 set are privileged (the "spr[0]" bit of the field)."""
    return bool(sprn & 0x10)


def mtspr(sprn: int, rs: int) -> int:
    return 0x7C0003A6 | (rs << 21) | ((sprn & 0x1F) << 16) | ((sprn >> 5) << 11)


def mfspr(rt: int, sprn: int) -> int:
    return 0x7C0002A6 | (rt << 21) | ((sprn & 0x1F) << 16) | ((sprn >> 5) << 11)


def stvx(vs: int, ra: int, rb: int) -> int:
    return 0x7C0001CE | (vs << 21) | (ra << 16) | (rb << 11)


def lvx(vt: int, ra: int, rb: int) -> int:
    return 0x7C0000CE | (vt << 21) | (ra << 16) | (rb << 11)


def mfvscr(vd: int) -> int:
    return 0x10000604 | (vd << 21)


def mtvscr(vb: int) -> int:
    return 0x10000644 | (vb << 11)


class Priv(enum.Enum):
    """Privileged instructions of e500 Book E that raise a program interrupt in problem state."""

    MFMSR = "mfmsr"
    MTMSR = "mtmsr"
    WRTEE = "wrtee"
    WRTEEI = "wrteei"
    RFI = "rfi"
    RFCI = "rfci"
    RFDI = "rfdi"
    RFMCI = "rfmci"
    MTSPR = "mtspr"
    MFSPR = "mfspr"
    TLBWE = "tlbwe"
    TLBRE = "tlbre"
    TLBSX = "tlbsx"
    TLBIVAX = "tlbivax"
    TLBSYNC = "tlbsync"
    TLBILX = "tlbilx"
    DCBI = "dcbi"
    MSGSND = "msgsnd"
    MSGCLR = "msgclr"
    MFPMR = "mfpmr"
    MTPMR = "mtpmr"
    CACHE_LOCK = "cache-lock"


_OP31_PRIV = {
    83: Priv.MFMSR,
    146: Priv.MTMSR,
    131: Priv.WRTEE,
    163: Priv.WRTEEI,
    339: Priv.MFSPR,
    467: Priv.MTSPR,
    978: Priv.TLBWE,
    946: Priv.TLBRE,
    914: Priv.TLBSX,
    786: Priv.TLBIVAX,
    566: Priv.TLBSYNC,
    18: Priv.TLBILX,
    470: Priv.DCBI,
    206: Priv.MSGSND,
    238: Priv.MSGCLR,
    334: Priv.MFPMR,
    462: Priv.MTPMR,
    166: Priv.CACHE_LOCK,  # dcbtls
    134: Priv.CACHE_LOCK,  # dcbtstls
    486: Priv.CACHE_LOCK,  # icbtls
    390: Priv.CACHE_LOCK,  # dcblc
    230: Priv.CACHE_LOCK,  # icblc
}
_OP19_PRIV = {50: Priv.RFI, 51: Priv.RFCI, 39: Priv.RFDI, 38: Priv.RFMCI}
XOP_EHPRIV = 270
XOP_TW = 4
XOP_TD = 68


def privileged(inst: int) -> Priv | None:
    """The privileged operation ``inst`` is, or None (mtspr/mfspr only for privileged SPRs)."""
    op = get_op(inst)
    if op == OP_31:
        kind = _OP31_PRIV.get(get_xop(inst))
        if kind in (Priv.MTSPR, Priv.MFSPR) and not spr_is_privileged(get_sprn(inst)):
            return None
        return kind
    if op == OP_19:
        return _OP19_PRIV.get(get_xop(inst))
    return None


def is_trap(inst: int, is64: bool = False) -> bool:
    """``tw``/``twi``, and on a 64-bit core (``is64``) ``td``/``tdi`` too: the hardware's
    program interrupt for them carries ESR[PTR], which KVM hands on (its ``fault_esr``). On the
    32-bit e500mc ``td`` and ``tdi`` are illegal instructions (found by the e6500 fidelity
    differential: a taken ``td`` was delivered with ESR[PIL])."""
    op = get_op(inst)
    if op == OP_TRAP or (op == OP_31 and get_xop(inst) == XOP_TW):
        return True
    return is64 and (op == OP_TDI or (op == OP_31 and get_xop(inst) == XOP_TD))


def is_ehpriv(inst: int) -> bool:
    return get_op(inst) == OP_31 and get_xop(inst) == XOP_EHPRIV


def sc_level(inst: int) -> int | None:
    """LEV of an ``sc`` instruction (0 = system call, 1 = hypervisor call), else None."""
    if get_op(inst) != OP_SC:
        return None
    return (inst >> 5) & 0x7F


@dataclass(frozen=True, slots=True)
class LoadStore:
    """An integer load or store: what an MMIO exit must complete."""

    is_store: bool
    size: int
    rt: int
    ra: int
    rb: int | None
    """Index register for X-form, None for D-form."""
    d: int
    update: bool
    signed: bool = False
    byterev: bool = False

    def ea(self, gpr: list[int], mask: int = 0xFFFFFFFF) -> int:
        """The effective address; ``mask`` is the computation mode's (64 bits with MSR[CM])."""
        base = gpr[self.ra] if self.ra or self.update else 0
        off = gpr[self.rb] if self.rb is not None else self.d
        return (base + off) & mask


# (is_store, size, update, signed) by D-form primary opcode
_DFORM = {
    32: (False, 4, False, False),
    33: (False, 4, True, False),
    34: (False, 1, False, False),
    35: (False, 1, True, False),
    36: (True, 4, False, False),
    37: (True, 4, True, False),
    38: (True, 1, False, False),
    39: (True, 1, True, False),
    40: (False, 2, False, False),
    41: (False, 2, True, False),
    42: (False, 2, False, True),
    43: (False, 2, True, True),
    44: (True, 2, False, False),
    45: (True, 2, True, False),
}
# (is_store, size, update, signed, byterev) by X-form extended opcode (primary 31)
_XFORM = {
    23: (False, 4, False, False, False),
    55: (False, 4, True, False, False),
    87: (False, 1, False, False, False),
    119: (False, 1, True, False, False),
    151: (True, 4, False, False, False),
    183: (True, 4, True, False, False),
    215: (True, 1, False, False, False),
    247: (True, 1, True, False, False),
    279: (False, 2, False, False, False),
    311: (False, 2, True, False, False),
    343: (False, 2, False, True, False),
    375: (False, 2, True, True, False),
    407: (True, 2, False, False, False),
    439: (True, 2, True, False, False),
    534: (False, 4, False, False, True),
    662: (True, 4, False, False, True),
    790: (False, 2, False, False, True),
    918: (True, 2, False, False, True),
    # 64-bit cores (e5500, e6500) only: the others raise an illegal instruction before any access
    21: (False, 8, False, False, False),  # ldx
    53: (False, 8, True, False, False),  # ldux
    149: (True, 8, False, False, False),  # stdx
    181: (True, 8, True, False, False),  # stdux
    341: (False, 4, False, True, False),  # lwax
    373: (False, 4, True, True, False),  # lwaux
    532: (False, 8, False, False, True),  # ldbrx
    660: (True, 8, False, False, True),  # stdbrx
}
# (is_store, size, update, signed) by DS-form primary opcode and XO (the low two bits)
_DSFORM = {
    (58, 0): (False, 8, False, False),  # ld
    (58, 1): (False, 8, True, False),  # ldu
    (58, 2): (False, 4, False, True),  # lwa
    (62, 0): (True, 8, False, False),  # std
    (62, 1): (True, 8, True, False),  # stdu
}


def load_store(inst: int) -> LoadStore | None:
    op = get_op(inst)
    if op in _DFORM:
        st, size, upd, sgn = _DFORM[op]
        return LoadStore(st, size, get_rt(inst), get_ra(inst), None, get_d(inst), upd, sgn)
    if (op, inst & 3) in _DSFORM:
        st, size, upd, sgn = _DSFORM[op, inst & 3]
        ds = get_d(inst & ~3)
        return LoadStore(st, size, get_rt(inst), get_ra(inst), None, ds, upd, sgn)
    if op == OP_31 and get_xop(inst) in _XFORM:
        st, size, upd, sgn, rev = _XFORM[get_xop(inst)]
        return LoadStore(st, size, get_rt(inst), get_ra(inst), get_rb(inst), 0, upd, sgn, rev)
    return None


def branch_taken(inst: int, cr: int, ctr: int, mask: int = 0xFFFFFFFF) -> bool | None:
    """Whether ``inst`` is a branch that will be taken (None: not a branch). ``bc`` forms follow
    the BO encoding: decrement-and-test CTR unless BO[2], test CR[BI] unless BO[0]; CTR is
    tested in the computation mode's width ``mask``."""
    op = get_op(inst)
    if op == 18:  # b, ba, bl, bla
        return True
    if op == 16 or (op == OP_19 and get_xop(inst) in (16, 528)):  # bc, bclr, bcctr
        bo = (inst >> 21) & 0x1F
        bi = (inst >> 16) & 0x1F
        ctr_ok = True
        if not bo & 0x04 and not (op == OP_19 and get_xop(inst) == 528):
            ctr_ok = (((ctr - 1) & mask) != 0) != bool(bo & 0x02)
        cond_ok = bool(bo & 0x10) or (bool(cr >> (31 - bi) & 1) == bool(bo & 0x08))
        return ctr_ok and cond_ok
    return None
