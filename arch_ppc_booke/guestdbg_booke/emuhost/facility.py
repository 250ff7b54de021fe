"""The e500 debug facility as the hardware implements it (e500 core reference manual ch. 8).

It is loaded with the register image KVM switches in at KVM_RUN and after a guest's debug-SPR
write (``switch_booke_debug_regs(&vcpu->arch.dbg_reg)``) and owns the hardware DBSR. Only
internal debug mode (DBCR0[IDM]) is modelled; the events:

* **IAC** (§8.4.1): the instruction at an address equal to IAC1/IAC2 (bits 0-29) is about to
  execute. Taken before it executes.
* **DAC** (§8.4.2): a load (DACnR) or store (DACnW) whose effective address equals DACn. Taken
  before the access, with the instruction suppressed. *Exact address*: the compare is on the
  access's starting effective address, as the PPC440x5 manual (§8.3.2, same Book E facility)
  states for integer loads and stores; so ``stw`` to 0x1000 does not match DAC 0x1002. The e500
  manual gives no byte-overlap rule; KVM programs exact mode (no DBCR2 range/mask bits) and GDB's
  BookE target asks for one address per DAC.
* **IC** (§8.4.5): an instruction completed; not recognized with MSR[DE] = 0 ("DBSR[IDE] cannot be
  set by an instruction complete debug event"), not for an instruction suppressed by another
  interrupt; ``sc`` completes and then interrupts, so it also raises IC.
* **BRT** (§8.4.4): a taken branch is about to execute; not recognized with MSR[DE] = 0.
* **TRAP** (DBCR0[TIE]): a trap instruction whose condition is met.

IAC, DAC and TRAP events with MSR[DE] = 0 set their DBSR bit and DBSR[IDE] and no interrupt
occurs (the instruction runs); the debug interrupt is taken later, when MSR[DE] becomes 1 with the
bits still set ("delayed debug interrupt", §8.4.1). DBCR1/DBCR2 qualifiers are honoured: the
user/supervisor field (00 any, 10 MSR[PR]=0, 11 MSR[PR]=1; PPC440x5 §8.3.2) and the
effective/real-address field (10 IS/DS=0, 11 IS/DS=1), compared with the MSR the *hardware* runs
the guest with (``kvm_msr``). Range and mask pairing modes (DBCR1[IAC12M], DBCR2[DAC12M]) and
data-value compare are not modelled; KVM never sets them.
"""

from __future__ import annotations

from .. import regs
from . import kvm_msr
from .board import PAGE_SIZE
from .engine import PROT_ALL, PROT_READ, PROT_WRITE, Engine
from .kvm_state import VcpuArch

_EVENT_BITS = (
    regs.DBSR_IC
    | regs.DBSR_BT
    | regs.DBSR_TIE
    | regs.DBSR_IAC1
    | regs.DBSR_IAC2
    | regs.DBSR_IAC3
    | regs.DBSR_IAC4
    | regs.DBSR_DAC1R
    | regs.DBSR_DAC1W
    | regs.DBSR_DAC2R
    | regs.DBSR_DAC2W
)
_ARMING_BITS = (
    regs.DBCR0_IAC1
    | regs.DBCR0_IAC2
    | regs.DBCR0_DAC1R
    | regs.DBCR0_DAC1W
    | regs.DBCR0_DAC2R
    | regs.DBCR0_DAC2W
)
"""The DBCR0 enables that decide how ``load`` arms the engine (with DBCR0[IDM])."""


def _qualifies(us: int, er: int, pr: bool, space: bool) -> bool:
    if (us == 2 and pr) or (us == 3 and not pr):
        return False
    return not ((er == 2 and space) or (er == 3 and not space))


class DebugFacility:
    def __init__(self, arch: VcpuArch) -> None:
        self.arch = arch
        self.dbsr = 0
        """The hardware DBSR (KVM copies it to ``vcpu->arch.dbsr`` at a debug interrupt)."""
        self.engine: Engine | None = None
        self._loaded: tuple[int, ...] | None = None
        """What the engine was last armed from: the enables and addresses ``load`` reads and
        the engine's memory generation (None: not armed yet)."""

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def load(self) -> None:
        """Arm the engine for the current ``dbg_reg`` (``switch_booke_debug_regs``)."""
        assert self.engine is not None
        d = self.arch.dbg_reg
        # KVM loads the registers at every entry; loading the image the engine already holds
        # changes nothing, so only a different image (or a remapped RAM) re-arms it.
        dbcr0 = d.dbcr0 & _ARMING_BITS if d.dbcr0 & regs.DBCR0_IDM else 0
        key = (dbcr0, d.iac1, d.iac2, d.dac1, d.dac2, self.engine.memory_generation())
        if key == self._loaded:
            return
        self._loaded = None
        breaks: list[int] = []
        pages: dict[int, int] = {}
        if d.dbcr0 & regs.DBCR0_IDM:
            if d.dbcr0 & regs.DBCR0_IAC1:
                breaks.append(d.iac1)
            if d.dbcr0 & regs.DBCR0_IAC2:
                breaks.append(d.iac2)
            for dac, rbit, wbit in (
                (d.dac1, regs.DBCR0_DAC1R, regs.DBCR0_DAC1W),
                (d.dac2, regs.DBCR0_DAC2R, regs.DBCR0_DAC2W),
            ):
                if d.dbcr0 & (rbit | wbit):
                    page = dac & ~(PAGE_SIZE - 1)
                    prot = pages.get(page, PROT_ALL)
                    if d.dbcr0 & rbit:
                        prot &= ~PROT_READ
                    if d.dbcr0 & wbit:
                        prot &= ~PROT_WRITE
                    pages[page] = prot
        self.engine.set_code_breaks(breaks)
        self.engine.set_protection(pages)
        self._loaded = key

    # -- events ---------------------------------------------------------------------------------

    def iac_bits(self, pc: int) -> int:
        a = self.arch
        d = a.dbg_reg
        if not d.dbcr0 & regs.DBCR0_IDM:
            return 0
        pr, is_ = kvm_msr.hw_pr(a), kvm_msr.hw_is(a)
        bits = 0
        word = pc & ~3
        dbcr0, dbcr1 = d.dbcr0, d.dbcr1
        if (
            dbcr0 & regs.DBCR0_IAC1
            and d.iac1 & ~3 == word
            and _qualifies(dbcr1 >> 30 & 3, dbcr1 >> 28 & 3, pr, is_)
        ):
            bits |= regs.DBSR_IAC1
        if (
            dbcr0 & regs.DBCR0_IAC2
            and d.iac2 & ~3 == word
            and _qualifies(dbcr1 >> 26 & 3, dbcr1 >> 24 & 3, pr, is_)
        ):
            bits |= regs.DBSR_IAC2
        return bits

    def dac_bits(self, ea: int, is_write: bool) -> int:
        a = self.arch
        d = a.dbg_reg
        if not d.dbcr0 & regs.DBCR0_IDM:
            return 0
        pr, ds = kvm_msr.hw_pr(a), kvm_msr.hw_ds(a)
        bits = 0
        if d.dac1 == ea and _qualifies(d.dbcr2 >> 30 & 3, d.dbcr2 >> 28 & 3, pr, ds):
            if is_write and d.dbcr0 & regs.DBCR0_DAC1W:
                bits |= regs.DBSR_DAC1W
            if not is_write and d.dbcr0 & regs.DBCR0_DAC1R:
                bits |= regs.DBSR_DAC1R
        if d.dac2 == ea and _qualifies(d.dbcr2 >> 26 & 3, d.dbcr2 >> 24 & 3, pr, ds):
            if is_write and d.dbcr0 & regs.DBCR0_DAC2W:
                bits |= regs.DBSR_DAC2W
            if not is_write and d.dbcr0 & regs.DBCR0_DAC2R:
                bits |= regs.DBSR_DAC2R
        return bits

    def _enabled(self, bit: int) -> bool:
        dbcr0 = self.arch.dbg_reg.dbcr0
        return bool(dbcr0 & regs.DBCR0_IDM and dbcr0 & bit)

    def ic_armed(self) -> bool:
        return self._enabled(regs.DBCR0_IC) and kvm_msr.hw_de(self.arch)

    def bt_armed(self) -> bool:
        return self._enabled(regs.DBCR0_BT) and kvm_msr.hw_de(self.arch)

    def tie_enabled(self) -> bool:
        return self._enabled(regs.DBCR0_TIE)

    def delayed_event(self) -> bool:
        """Event bits recorded while MSR[DE] was 0, now deliverable."""
        return bool(
            self.dbsr & _EVENT_BITS
            and self.arch.dbg_reg.dbcr0 & regs.DBCR0_IDM
            and kvm_msr.hw_de(self.arch)
        )
