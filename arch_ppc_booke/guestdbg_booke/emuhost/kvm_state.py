"""What Linux BookE KVM keeps per vCPU (``struct kvm_vcpu_arch`` and friends), as plain data.

Field names follow the kernel (``vcpu->arch.dbg_reg``, ``vcpu->arch.dbsr``,
``vcpu->arch.shared->msr``, ``pending_exceptions``...). Everything guest-visible that does not live
in the engine's registers lives here, so a snapshot of this object plus the engine registers and
RAM is the whole guest (``to_dict``/``from_dict``).

The kernel functions that act on this state are in the ``kvm_*`` modules, each taking the
``Kvm`` context below: the state, the guest's registers in the engine, and the two things the
kernel reaches outside itself (reloading the debug registers into the hardware, and the SPRs
the guest reads without trapping).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import regs
from . import board
from .guest_tlb import GuestTlb

# booke.h: BOOKE_IRQPRIO_* (the index of vcpu->arch.ivor[] and the order of delivery)
BOOKE_IRQPRIO_DATA_STORAGE = 0
BOOKE_IRQPRIO_INST_STORAGE = 1
BOOKE_IRQPRIO_ALIGNMENT = 2
BOOKE_IRQPRIO_PROGRAM = 3
BOOKE_IRQPRIO_FP_UNAVAIL = 4
BOOKE_IRQPRIO_SPE_UNAVAIL = 5
BOOKE_IRQPRIO_SPE_FP_DATA = 6
BOOKE_IRQPRIO_SPE_FP_ROUND = 7
BOOKE_IRQPRIO_SYSCALL = 8
BOOKE_IRQPRIO_AP_UNAVAIL = 9
BOOKE_IRQPRIO_DTLB_MISS = 10
BOOKE_IRQPRIO_ITLB_MISS = 11
BOOKE_IRQPRIO_MACHINE_CHECK = 12
BOOKE_IRQPRIO_DEBUG = 13
BOOKE_IRQPRIO_CRITICAL = 14
BOOKE_IRQPRIO_WATCHDOG = 15
BOOKE_IRQPRIO_EXTERNAL = 16
BOOKE_IRQPRIO_FIT = 17
BOOKE_IRQPRIO_DECREMENTER = 18
BOOKE_IRQPRIO_PERFORMANCE_MONITOR = 19
BOOKE_IRQPRIO_EXTERNAL_LEVEL = 20
BOOKE_IRQPRIO_DBELL = 21
BOOKE_IRQPRIO_DBELL_CRIT = 22
BOOKE_IRQPRIO_MAX = 23

# IVORn -> BOOKE_IRQPRIO (booke_emulate.c / e500_emulate.c mtspr cases, sregs ivor_low)
IVOR_PRIO = {
    0: BOOKE_IRQPRIO_CRITICAL,
    1: BOOKE_IRQPRIO_MACHINE_CHECK,
    2: BOOKE_IRQPRIO_DATA_STORAGE,
    3: BOOKE_IRQPRIO_INST_STORAGE,
    4: BOOKE_IRQPRIO_EXTERNAL,
    5: BOOKE_IRQPRIO_ALIGNMENT,
    6: BOOKE_IRQPRIO_PROGRAM,
    7: BOOKE_IRQPRIO_FP_UNAVAIL,
    8: BOOKE_IRQPRIO_SYSCALL,
    9: BOOKE_IRQPRIO_AP_UNAVAIL,
    10: BOOKE_IRQPRIO_DECREMENTER,
    11: BOOKE_IRQPRIO_FIT,
    12: BOOKE_IRQPRIO_WATCHDOG,
    13: BOOKE_IRQPRIO_DTLB_MISS,
    14: BOOKE_IRQPRIO_ITLB_MISS,
    15: BOOKE_IRQPRIO_DEBUG,
    32: BOOKE_IRQPRIO_SPE_UNAVAIL,
    33: BOOKE_IRQPRIO_SPE_FP_DATA,
    34: BOOKE_IRQPRIO_SPE_FP_ROUND,
    35: BOOKE_IRQPRIO_PERFORMANCE_MONITOR,
    36: BOOKE_IRQPRIO_DBELL,
    37: BOOKE_IRQPRIO_DBELL_CRIT,
}
CORE_IVORS = {
    # CONFIG_KVM_BOOKE_HV adds the doorbells; e500v2 (SPE) has IVOR32-34
    "e500mc": (*range(16), 35, 36, 37),
    "e500v2": (*range(16), 32, 33, 34, 35),
    # e500_emulate.c: IVOR32/33 are AltiVec's with CONFIG_ALTIVEC, which an e6500 host needs
    # (e500mc.c, kvmppc_core_check_processor_compat) and the e5500 model assumes too
    "e5500": (*range(16), 32, 33, 35, 36, 37),
    "e6500": (*range(16), 32, 33, 35, 36, 37),
}
_64BIT_ONLY = ("epcr",)
"""VcpuArch fields a 32-bit host kernel does not have (left out of its snapshots)."""


@dataclass
class DebugReg:
    """``struct debug_reg``: one image shared by the guest's emulated mtspr and by
    KVM_SET_GUEST_DEBUG, loaded into the hardware at KVM_RUN (``switch_booke_debug_regs``)."""

    dbcr0: int = 0
    dbcr1: int = 0
    dbcr2: int = 0
    iac1: int = 0
    iac2: int = 0
    iac3: int = 0
    iac4: int = 0
    dac1: int = 0
    dac2: int = 0


@dataclass
class MmioPending:
    """An MMIO load or store the VMM is serving; completed at the next KVM_RUN
    (``kvmppc_complete_mmio_load``)."""

    is_write: bool
    rt: int
    ra: int
    ea: int
    size: int
    update: bool
    signed: bool
    byterev: bool


@dataclass
class VcpuArch:
    core: str
    vcpu_id: int
    pvr: int
    svr: int
    sw_break_flavour: str = "dddd00"
    msr: int = 0
    """``shared->msr``: the MSR the guest sees (with MSR_GS on HV, ``kvmppc_set_msr``)."""
    shadow_de: bool = False
    """BookE-PR: MSR[DE] of ``shadow_msr``, the MSR the hardware runs the guest with."""
    critical: int = 0
    """``shared->critical`` (paravirt critical-section marker; no guest here sets it)."""
    pending: int = 0
    """``pending_exceptions``: a bit per BOOKE_IRQPRIO."""
    queued_esr: int = 0
    queued_dear: int = 0
    srr0: int = 0
    srr1: int = 0
    csrr0: int = 0
    csrr1: int = 0
    dsrr0: int = 0
    dsrr1: int = 0
    mcsrr0: int = 0
    mcsrr1: int = 0
    esr: int = 0
    dear: int = 0
    mcsr: int = 0
    mcar: int = 0
    ivpr: int = 0x55550000
    ivor: list[int] = field(default_factory=lambda: [0x7700 | i * 4 for i in range(23)])
    """``kvmppc_core_vcpu_create``: eye-catching values until the guest programs them."""
    sprg: list[int] = field(default_factory=lambda: [0] * 10)
    pid: int = 0
    pid1: int = 0
    pid2: int = 0
    tcr: int = 0
    tsr: int = 0
    dec: int = 0
    decar: int = 0
    vrsave: int = 0
    epr: int = 0
    epcr: int = 0
    """``vcpu->arch.epcr``, the guest's EPCR (CONFIG_64BIT only: ``kvmppc_set_epcr``); its ICM
    bit gives delivered interrupts MSR[CM]."""
    guest_debug: int = 0
    """``vcpu->guest_debug``: the control word of the last KVM_SET_GUEST_DEBUG (0 = off)."""
    dbg_reg: DebugReg = field(default_factory=DebugReg)
    dbsr: int = 0
    """``vcpu->arch.dbsr``: the guest's DBSR (hardware DBSR is copied here at a debug exit)."""
    shadow_msrp: int = regs.MSRP_UCLEP | regs.MSRP_PMMP
    mas0: int = 0
    mas1: int = 0
    mas2: int = 0
    mas7_3: int = 0
    mas4: int = 0
    mas6: int = 0
    l1csr0: int = 0
    l1csr1: int = 0
    hid0: int = 0
    hid1: int = 0
    pwrmgtcr0: int = 0
    pmr: dict[int, int] = field(default_factory=dict)
    tlb: GuestTlb = field(default_factory=GuestTlb)
    mmio: MmioPending | None = None
    last_inst: int = 0

    def __post_init__(self) -> None:
        self.tlb.ea_mask = self.ulong

    @property
    def hv(self) -> bool:
        """CONFIG_KVM_BOOKE_HV: e500mc, e5500 and e6500 run guests in guest state (kvm_e500mc);
        e500v2 is BookE-PR."""
        return self.core != "e500v2"

    @property
    def is64(self) -> bool:
        """CONFIG_64BIT: the host kernel of e5500/e6500."""
        return board.WIDTH[self.core] == 64

    @property
    def ulong(self) -> int:
        """Mask of the host kernel's ``unsigned long`` (NIP, SRRs, DEAR, IACs, DACs...)."""
        return (1 << board.WIDTH[self.core]) - 1

    @property
    def ea_mask(self) -> int:
        """Mask of an effective address in the guest's current mode: 64 bits with MSR[CM] on a
        64-bit core, else 32 (Power ISA Book III-E, computation mode)."""
        return self.ulong if self.msr & regs.MSR_CM else 0xFFFFFFFF

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tlb"] = self.tlb.to_dict()
        if not self.is64:
            for name in _64BIT_ONLY:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VcpuArch:
        d = dict(d)
        d["dbg_reg"] = DebugReg(**d["dbg_reg"])
        d["tlb"] = GuestTlb.from_dict(d["tlb"])
        d["mmio"] = MmioPending(**d["mmio"]) if d.get("mmio") else None
        d["pmr"] = {int(k): v for k, v in d.get("pmr", {}).items()}
        return cls(**d)


class GuestCpu(Protocol):
    """The guest registers that live in the engine, as the kernel reads and writes them."""

    pc: int

    def gpr(self, n: int) -> int: ...

    def set_gpr(self, n: int, value: int) -> None: ...


class RunArea(Protocol):
    """What the kernel writes into the mmap'd ``kvm_run`` when it returns to userspace."""

    def exit_debug(self, address: int, status: int) -> None: ...

    def exit_mmio(self, phys_addr: int, data: bytes, is_write: bool) -> None: ...

    def exit_unknown(self, hardware_exit_reason: int) -> None: ...


@dataclass
class Kvm:
    """The context every kernel function of the model takes."""

    arch: VcpuArch
    cpu: GuestCpu
    run: RunArea
    reload_debug: Callable[[], None]
    """``switch_booke_debug_regs``: the hardware facility takes the current ``dbg_reg``."""
    push_user_spr: Callable[[int, int], None]
    """Write an SPR the guest reads in problem state (SPRG3-7 aliases) into the engine."""
