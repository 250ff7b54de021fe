"""KVM_GET/SET_REGS, KVM_GET/SET_SREGS and ONE_REG for the model, in the kernel's byte layout.

Every offset comes from ``guestdbg_booke.abi.layout()`` (392-byte ``kvm_regs``, 1232-byte
``kvm_sregs``, big-endian). What is filled and consumed follows booke.c
(``kvm_arch_vcpu_ioctl_get/set_regs``, ``get/set_sregs_base``, ``get/set_sregs_arch206``,
``kvmppc_get/set_sregs_ivor``, ``kvmppc_get/set_one_reg``), e500mc.c / e500.c (the core part of
sregs, SPRG9) and e500_mmu.c (MAS/TLB config in sregs and ONE_REG). Not filled, as in the kernel:
the E_DEBUG block of sregs (DBSR, DBCR, IAC, DAC), SPRG8/9 and DSRR in sregs; KVM_REG_PPC_DBSR
and IAC3/4 (CONFIG_PPC_ADV_DEBUG_IACS = 2) are -EINVAL, and EPCR is too on a 32-bit host.

Width: the kernel keeps NIP, SRR0/1, SPRGs, CSRR0, DEAR, IVPR, the IACs and DACs in ``unsigned
long``s, so a 32-bit host (e500mc, e500v2) keeps the low 32 bits of what userspace writes and a
64-bit one (e5500, e6500) all 64; the MSR (``kvmppc_set_msr`` takes a u32), PID and the
32-bit sregs fields are 32 bits everywhere. The AltiVec registers are answered by
``altivec_one_reg`` (powerpc.c).

Errors return a negative errno; the vCPU turns it into ``KernelError``.
"""

from __future__ import annotations

import errno
import struct

from guestdbg.kvm.uapi import Field

from .. import abi, regs
from . import board, guest_tlb, kvm_msr
from .engine import CpuView, Engine
from .kvm_state import (
    BOOKE_IRQPRIO_DBELL,
    BOOKE_IRQPRIO_DBELL_CRIT,
    BOOKE_IRQPRIO_PERFORMANCE_MONITOR,
    BOOKE_IRQPRIO_SPE_FP_DATA,
    BOOKE_IRQPRIO_SPE_FP_ROUND,
    BOOKE_IRQPRIO_SPE_UNAVAIL,
    IVOR_PRIO,
    Kvm,
)

KVM_REG_PPC_EPR = 0x1020000000000086
KVM_REG_PPC_OR_TSR = 0x1020000000000087
KVM_REG_PPC_CLEAR_TSR = 0x1020000000000088
KVM_REG_PPC_TCR = 0x1020000000000089
KVM_REG_PPC_TSR = 0x102000000000008A
KVM_REG_PPC_MAS0 = 0x102000000000008C
KVM_REG_PPC_MAS1 = 0x102000000000008D
KVM_REG_PPC_MAS2 = 0x103000000000008E
KVM_REG_PPC_MAS7_3 = 0x103000000000008F
KVM_REG_PPC_MAS4 = 0x1020000000000090
KVM_REG_PPC_MAS6 = 0x1020000000000091
KVM_REG_PPC_MMUCFG = 0x1020000000000092
KVM_REG_PPC_TLB0CFG = 0x1020000000000093
KVM_REG_PPC_TLB3CFG = 0x1020000000000096
KVM_REG_PPC_TLB0PS = 0x1020000000000097
KVM_REG_PPC_TLB3PS = 0x102000000000009A
KVM_REG_PPC_EPTCFG = 0x102000000000009B
KVM_REG_PPC_VRSAVE = 0x10200000000000B4
KVM_REG_PPC_SPRG9 = 0x10300000000000BA
KVM_REG_PPC_EPCR = 0x1020000000000085
KVM_REG_PPC_VR0 = 0x1040000000000040
KVM_REG_PPC_VR31 = 0x104000000000005F
KVM_REG_PPC_VSCR = 0x1020000000000081

_U32 = 0xFFFFFFFF
_ULONG = frozenset({"csrr0", "dear", "mcsrr0", "ivpr"})
"""sregs fields the kernel keeps in an ``unsigned long`` (64-bit on e5500/e6500 hosts)."""


def _put_narrowing(field: Field, buf: bytearray, value: int) -> None:
    """``value`` stored as C's assignment stores it: cut to the field's width. On a 64-bit host
    CSRR1 and MCSRR1 are ``unsigned long`` in the vCPU and ``__u32`` in ``kvm_sregs``
    (``booke.c`` ``get_sregs_base``, ``get_sregs_arch206``), so a guest's 64-bit write to them
    reads back cut, not as an error (found by the e5500 fidelity differential)."""
    field.put(buf, value & ((1 << 8 * field.size) - 1))


class UapiCodec:
    """Precomputed fields; one per vCPU (the per-exit path must not look names up)."""

    def __init__(self) -> None:
        lay = abi.layout()
        self.layout = lay
        r = "struct kvm_regs"
        self.regs_size = lay.sizeof(r)
        self.r_pc = lay.field(r, "pc")
        self.r_cr = lay.field(r, "cr")
        self.r_ctr = lay.field(r, "ctr")
        self.r_lr = lay.field(r, "lr")
        self.r_xer = lay.field(r, "xer")
        self.r_msr = lay.field(r, "msr")
        self.r_srr0 = lay.field(r, "srr0")
        self.r_srr1 = lay.field(r, "srr1")
        self.r_pid = lay.field(r, "pid")
        self.r_sprg = [lay.field(r, f"sprg{n}") for n in range(8)]
        self.r_gpr = [lay.field(r, "gpr", n) for n in range(32)]
        self.r_gprs = struct.Struct(">32Q")  # gpr[32] is contiguous: one pack, not 32
        self.r_all = struct.Struct(">49Q")
        self.r_low = struct.Struct(">" + "4xI" * 49)
        """The low word of each of the 49 ``__u64``: what a 32-bit host's ``unsigned long``
        (and every ``u32`` field) takes of them, so no value needs masking."""
        order = ["pc", "cr", "ctr", "lr", "xer", "msr", "srr0", "srr1", "pid"]
        order += [f"sprg{n}" for n in range(8)]
        if [lay.offsetof(r, f) for f in order] != [8 * i for i in range(17)] or (
            lay.offsetof(r, "gpr") != 8 * 17 or self.regs_size != 8 * 49
        ):
            raise AssertionError("kvm_regs is not 49 consecutive __u64 in the expected order")
        s = "struct kvm_sregs"
        self.sregs_size = lay.sizeof(s)

        def e(*path: str | int) -> Field:
            return lay.field(s, "u", "e", *path)

        self.s_pvr = lay.field(s, "pvr")
        self.s_features = e("features")
        self.s_impl_id = e("impl_id")
        self.s_update = e("update_special")
        self.s_fsl_features = e("impl", "fsl", "features")
        self.s_fsl_svr = e("impl", "fsl", "svr")
        self.s_fsl_mcar = e("impl", "fsl", "mcar")
        self.s_fsl_hid0 = e("impl", "fsl", "hid0")
        names = (
            "pir", "csrr0", "csrr1", "mcsrr0", "mcsrr1", "esr", "dear", "ivpr", "mcsr", "tsr",
            "tcr", "decar", "dec", "tb", "vrsave", "mas0", "mas1", "mas2", "mas7_3", "mas4",
            "mas6", "mmucfg",
        )  # fmt: skip
        self.s = {n: e(n) for n in names}
        self.s_ivor_low = [e("ivor_low", n) for n in range(16)]
        self.s_ivor_high = [e("ivor_high", n) for n in range(18)]
        self.s_tlbcfg = [e("tlbcfg", n) for n in range(4)]

    # -- KVM_GET_REGS / KVM_SET_REGS ----------------------------------------------------------

    def get_regs(self, k: Kvm, engine: Engine) -> bytearray:
        a = k.arch
        core = engine.core_regs()
        # kvm_regs is 49 consecutive __u64 in this order (checked against the layout at init)
        return bytearray(
            self.r_all.pack(
                k.cpu.pc, core[32], core[33], core[34], core[35], a.msr, a.srr0, a.srr1, a.pid,
                *a.sprg[:8], *core[:32],
            )
        )  # fmt: skip

    def set_regs(self, k: Kvm, cpu: CpuView, engine: Engine, buf: bytes) -> None:
        a = k.arch
        # one unpack of the 49 __u64 (order checked against the layout at init); a 32-bit
        # host's ulong keeps only their low words, a 64-bit host's the whole of each
        v = (self.r_low if a.ulong == _U32 else self.r_all).unpack_from(buf)
        cpu.pc = v[0]
        kvm_msr.set_msr(a, v[5] & _U32)
        a.srr0 = v[6]
        a.srr1 = v[7]
        a.pid = v[8] & _U32
        sprg = a.sprg
        for n in range(3, 8):
            if v[9 + n] != sprg[n]:
                k.push_user_spr(regs.SPRN_SPRG3 + n - 3, v[9 + n])
        sprg[:8] = v[9:17]
        engine.set_core_regs((*v[17:49], v[1], v[2], v[3], v[4]))

    # -- KVM_GET_SREGS / KVM_SET_SREGS --------------------------------------------------------

    def get_sregs(self, k: Kvm) -> bytearray:
        a = k.arch
        buf = bytearray(self.sregs_size)
        s = self.s
        features = abi.KVM_SREGS_E_BASE | abi.KVM_SREGS_E_ARCH206 | abi.KVM_SREGS_E_IVOR
        features |= abi.KVM_SREGS_E_ARCH206_MMU | abi.KVM_SREGS_E_PM
        features |= abi.KVM_SREGS_E_PC if a.hv else abi.KVM_SREGS_E_SPE
        self.s_pvr.put(buf, a.pvr)
        self.s_features.put(buf, features)
        self.s_impl_id.put(buf, abi.KVM_SREGS_E_IMPL_FSL)
        self.s_fsl_features.put(buf, 0)
        self.s_fsl_svr.put(buf, a.svr)
        self.s_fsl_hid0.put(buf, a.hid0)
        self.s_fsl_mcar.put(buf, a.mcar)
        for name in ("csrr0", "csrr1", "mcsr", "esr", "dear", "tsr", "tcr", "dec", "vrsave"):
            _put_narrowing(s[name], buf, getattr(a, name))
        s["tb"].put(buf, 0)  # Unicorn's timebase does not advance
        s["pir"].put(buf, a.vcpu_id)
        for name in ("mcsrr0", "mcsrr1", "decar", "ivpr", "mas0", "mas1", "mas2", "mas7_3"):
            _put_narrowing(s[name], buf, getattr(a, name))
        s["mas4"].put(buf, a.mas4)
        s["mas6"].put(buf, a.mas6)
        s["mmucfg"].put(buf, guest_tlb.MMUCFG)
        self.s_tlbcfg[0].put(buf, guest_tlb.TLBCFG[a.core][0])
        self.s_tlbcfg[1].put(buf, guest_tlb.TLBCFG[a.core][1])
        for n in range(16):
            self.s_ivor_low[n].put(buf, a.ivor[IVOR_PRIO[n]])
        high = self.s_ivor_high
        if a.hv:
            high[4].put(buf, a.ivor[BOOKE_IRQPRIO_DBELL])
            high[5].put(buf, a.ivor[BOOKE_IRQPRIO_DBELL_CRIT])
        else:
            high[0].put(buf, a.ivor[BOOKE_IRQPRIO_SPE_UNAVAIL])
            high[1].put(buf, a.ivor[BOOKE_IRQPRIO_SPE_FP_DATA])
            high[2].put(buf, a.ivor[BOOKE_IRQPRIO_SPE_FP_ROUND])
        high[3].put(buf, a.ivor[BOOKE_IRQPRIO_PERFORMANCE_MONITOR])
        return buf

    def set_sregs(self, k: Kvm, buf: bytes) -> int:
        """``kvm_arch_vcpu_ioctl_set_sregs``: each group applies in order, with no rollback when
        a later one fails (a PIR that is not the vCPU id fails after the BASE group applied)."""
        a = k.arch
        s = self.s
        if self.s_pvr.get(buf) != a.pvr:
            return -errno.EINVAL
        features = self.s_features.get(buf)
        if features & abi.KVM_SREGS_E_BASE:
            for name in ("csrr0", "csrr1", "mcsr", "esr", "dear", "vrsave", "tcr"):
                setattr(a, name, s[name].get(buf) & (a.ulong if name in _ULONG else _U32))
            update = self.s_update.get(buf)
            if update & abi.KVM_SREGS_E_UPDATE_DEC:
                a.dec = s["dec"].get(buf)
            if update & abi.KVM_SREGS_E_UPDATE_TSR:
                a.tsr = s["tsr"].get(buf)
        if features & abi.KVM_SREGS_E_ARCH206:
            if s["pir"].get(buf) != a.vcpu_id:
                return -errno.EINVAL
            for name in ("mcsrr0", "mcsrr1", "decar", "ivpr"):
                setattr(a, name, s[name].get(buf) & (a.ulong if name in _ULONG else _U32))
        if self.s_impl_id.get(buf) == abi.KVM_SREGS_E_IMPL_FSL:
            a.svr = self.s_fsl_svr.get(buf)
            a.hid0 = self.s_fsl_hid0.get(buf)
            a.mcar = self.s_fsl_mcar.get(buf) & _U32
        if features & abi.KVM_SREGS_E_ARCH206_MMU:
            for name in ("mas0", "mas1", "mas2", "mas7_3", "mas4", "mas6"):
                setattr(a, name, s[name].get(buf))
        if not features & abi.KVM_SREGS_E_IVOR:
            return 0
        high = self.s_ivor_high
        if not a.hv and features & abi.KVM_SREGS_E_SPE:
            a.ivor[BOOKE_IRQPRIO_SPE_UNAVAIL] = high[0].get(buf)
            a.ivor[BOOKE_IRQPRIO_SPE_FP_DATA] = high[1].get(buf)
            a.ivor[BOOKE_IRQPRIO_SPE_FP_ROUND] = high[2].get(buf)
        if features & abi.KVM_SREGS_E_PM:
            a.ivor[BOOKE_IRQPRIO_PERFORMANCE_MONITOR] = high[3].get(buf)
        if a.hv and features & abi.KVM_SREGS_E_PC:
            a.ivor[BOOKE_IRQPRIO_DBELL] = high[4].get(buf)
            a.ivor[BOOKE_IRQPRIO_DBELL_CRIT] = high[5].get(buf)
        for n in range(16):
            a.ivor[IVOR_PRIO[n]] = self.s_ivor_low[n].get(buf)
        return 0

    # -- ONE_REG ------------------------------------------------------------------------------

    def get_one_reg(self, k: Kvm, reg_id: int) -> int | None:
        """The value, or None for -EINVAL."""
        a = k.arch
        d = a.dbg_reg
        simple = {
            abi.KVM_REG_PPC_IAC1: d.iac1,
            abi.KVM_REG_PPC_IAC2: d.iac2,
            abi.KVM_REG_PPC_DAC1: d.dac1,
            abi.KVM_REG_PPC_DAC2: d.dac2,
            KVM_REG_PPC_EPR: a.epr,
            KVM_REG_PPC_TCR: a.tcr,
            KVM_REG_PPC_TSR: a.tsr,
            abi.KVM_REG_PPC_DEBUG_INST: _debug_inst(k),
            KVM_REG_PPC_VRSAVE: a.vrsave,
            KVM_REG_PPC_MAS0: a.mas0,
            KVM_REG_PPC_MAS1: a.mas1,
            KVM_REG_PPC_MAS2: a.mas2,
            KVM_REG_PPC_MAS7_3: a.mas7_3,
            KVM_REG_PPC_MAS4: a.mas4,
            KVM_REG_PPC_MAS6: a.mas6,
            KVM_REG_PPC_MMUCFG: guest_tlb.MMUCFG,
            KVM_REG_PPC_EPTCFG: 0,
            KVM_REG_PPC_TLB0CFG: guest_tlb.TLBCFG[a.core][0],
            KVM_REG_PPC_TLB0CFG + 1: guest_tlb.TLBCFG[a.core][1],
            KVM_REG_PPC_TLB0CFG + 2: 0,
            KVM_REG_PPC_TLB3CFG: 0,
        }
        if a.hv:
            simple[KVM_REG_PPC_SPRG9] = a.sprg[9]
        if a.is64:  # booke.c: #if defined(CONFIG_64BIT)
            simple[KVM_REG_PPC_EPCR] = a.epcr
        if reg_id in simple:
            return simple[reg_id]
        if KVM_REG_PPC_TLB0PS <= reg_id <= KVM_REG_PPC_TLB3PS:
            return 0
        return None

    def set_one_reg(self, k: Kvm, reg_id: int, value: int) -> int:
        a = k.arch
        d = a.dbg_reg
        debug = {
            abi.KVM_REG_PPC_IAC1: "iac1",
            abi.KVM_REG_PPC_IAC2: "iac2",
            abi.KVM_REG_PPC_DAC1: "dac1",
            abi.KVM_REG_PPC_DAC2: "dac2",
        }
        if reg_id in debug:
            setattr(d, debug[reg_id], value & a.ulong)  # unsigned long
            return 0
        if reg_id == KVM_REG_PPC_EPCR and a.is64:
            a.epcr = value & _U32  # kvmppc_set_epcr takes a u32
            return 0
        if reg_id == KVM_REG_PPC_EPR:
            a.epr = value
        elif reg_id == KVM_REG_PPC_OR_TSR:
            a.tsr |= value
        elif reg_id == KVM_REG_PPC_CLEAR_TSR:
            a.tsr &= ~value
        elif reg_id == KVM_REG_PPC_TSR:
            a.tsr = value
        elif reg_id == KVM_REG_PPC_TCR:
            a.tcr = value
        elif reg_id == KVM_REG_PPC_VRSAVE:
            a.vrsave = value
        elif reg_id == KVM_REG_PPC_SPRG9 and a.hv:
            a.sprg[9] = value & a.ulong
        elif reg_id in (KVM_REG_PPC_MAS0, KVM_REG_PPC_MAS1, KVM_REG_PPC_MAS2):
            setattr(a, {KVM_REG_PPC_MAS0: "mas0", KVM_REG_PPC_MAS1: "mas1",
                        KVM_REG_PPC_MAS2: "mas2"}[reg_id], value)  # fmt: skip
        elif reg_id == KVM_REG_PPC_MAS7_3:
            a.mas7_3 = value
        elif reg_id == KVM_REG_PPC_MAS4:
            a.mas4 = value
        elif reg_id == KVM_REG_PPC_MAS6:
            a.mas6 = value
        elif reg_id in (KVM_REG_PPC_MMUCFG, KVM_REG_PPC_EPTCFG) or (
            KVM_REG_PPC_TLB0CFG <= reg_id <= KVM_REG_PPC_TLB3PS
        ):
            # "Only allow MMU registers to be set to the config supported by KVM"
            return 0 if self.get_one_reg(k, reg_id) == value else -errno.EINVAL
        else:
            return -errno.EINVAL
        return 0


def altivec_one_reg(k: Kvm, engine: Engine, reg_id: int, value: int | None = None) -> int:
    """powerpc.c ``kvm_vcpu_ioctl_get_one_reg``/``set_one_reg``: the ids booke.c and e500mc.c
    answered -EINVAL for get a second chance there. With CONFIG_ALTIVEC (a 64-bit host here:
    e6500 needs it and the e5500 model assumes the same kernel) VR0-31 and VSCR are the
    registers on a core with AltiVec and -ENXIO on one without (``CPU_FTR_ALTIVEC``); a 32-bit
    e500 kernel has no CONFIG_ALTIVEC and says -EINVAL. (VRSAVE never gets here: booke.c
    answers it on every core.) Returns the value read, 0 after a write, or a negative errno."""
    if not k.arch.is64:
        return -errno.EINVAL
    if KVM_REG_PPC_VR0 <= reg_id <= KVM_REG_PPC_VR31:
        n = reg_id - KVM_REG_PPC_VR0
        if k.arch.core not in board.ALTIVEC:
            return -errno.ENXIO
        if value is None:
            return engine.vr(n)
        engine.set_vr(n, value)
        return 0
    if reg_id == KVM_REG_PPC_VSCR:
        if k.arch.core not in board.ALTIVEC:
            return -errno.ENXIO
        if value is None:
            return engine.vscr()
        engine.set_vscr(value)  # vr.vscr.u[3]
        return 0
    return -errno.EINVAL


def _debug_inst(k: Kvm) -> int:
    """KVM_REG_PPC_DEBUG_INST: 0x00dddd00 on current kernels; ``ehpriv 1`` on the 2014 ones."""
    if k.arch.sw_break_flavour == "ehpriv":
        return regs.KVMPPC_INST_EHPRIV_DEBUG
    return regs.KVMPPC_INST_SW_BREAKPOINT
