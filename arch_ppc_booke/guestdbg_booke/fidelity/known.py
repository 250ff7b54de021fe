"""The differences between the emulated e500mc host and QEMU that are right as they are.

Each is explained by the real kernel (the emulated host models Linux BookE-HV KVM, QEMU models
bare e500mc hardware) or by QEMU itself departing from the hardware; ``docs/fidelity.md`` lists
the same keys with their primary sources (``tests/fidelity/test_known.py`` checks they agree).
``explain`` recognises each exactly, value for value, so a host bug that happens to touch the
same register is still reported.
"""

from __future__ import annotations

from collections.abc import Mapping

from guestdbg.fidelity import KnownDifference

from .. import regs
from .generator import ENTRY_FIELDS, ENTRY_SIZE, Layout
from .trace import mem_name

HV_MSR_GS_DE = KnownDifference(
    key="booke-hv-msr-gs-de",
    what=(
        "MSR, SRR1 and the SRR1 the guest's handlers log: the host has MSR[GS] (0x10000000) "
        "and MSR[DE] (0x200) set that QEMU has clear"
    ),
    source=(
        "linux arch/powerpc/kvm/booke.c kvmppc_set_msr (CONFIG_KVM_BOOKE_HV: new_msr |= "
        "MSR_GS, the guest runs in guest state) and kvmppc_vcpu_sync_debug (while userspace "
        "debugs, MSR_DE is forced into the guest-visible MSR on HV); kvmppc_booke_irqprio_deliver "
        "saves that MSR in SRR1"
    ),
)
QEMU_SRR1_CAUSE = KnownDifference(
    key="qemu-booke-srr1-cause-bits",
    what=(
        "the SRR1 a program-interrupt handler logs: QEMU ORs a Book3S cause bit into it "
        "(0x80000 illegal, 0x40000 privileged, 0x20000 trap) that BookE hardware and KVM do not"
    ),
    source=(
        "qemu target/ppc/excp_helper.c powerpc_excp_booke, POWERPC_EXCP_PROGRAM (msr |= "
        "0x00080000/0x00040000/0x00020000 before SRR1 = msr); BookE saves the MSR unchanged: "
        "linux arch/powerpc/kvm/booke.c kvmppc_booke_irqprio_deliver (set_guest_srr(vcpu, nip, "
        "shared->msr))"
    ),
)
KNOWN: tuple[KnownDifference, ...] = (HV_MSR_GS_DE, QEMU_SRR1_CAUSE)

GS_DE = regs.MSR_GS | regs.MSR_DE
CAUSE_BY_ESR = {regs.ESR_PIL: 0x00080000, regs.ESR_PPR: 0x00040000, regs.ESR_PTR: 0x00020000}


class Explainer:
    """``explain`` for one program (the log's place is the program's)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._srr1_words = self._log_words("srr1")

    def _log_words(self, field: str) -> dict[str, str]:
        """mem name of each logged ``field`` -> mem name of the same entry's ESR."""
        lay = self.layout
        out = {}
        off = ENTRY_FIELDS.index(field) * 4
        esr_off = ENTRY_FIELDS.index("esr") * 4
        for n in range(lay.log_entries):
            entry = lay.log(0) + n * ENTRY_SIZE
            out[mem_name(entry + off)] = mem_name(entry + esr_off)
        return out

    def __call__(
        self, name: str, ref: int | None, host: int | None, ref_state: Mapping[str, int | None]
    ) -> KnownDifference | None:
        if ref is None or host is None:
            return None
        srr1_like = name in ("msr", "srr1") or name in self._srr1_words
        if srr1_like and host == ref | GS_DE and not ref & GS_DE:
            return HV_MSR_GS_DE
        esr_name = self._srr1_words.get(name)
        if esr_name is not None:
            cause = CAUSE_BY_ESR.get(ref_state.get(esr_name) or 0)
            if cause and ref & cause and host == (ref & ~cause) | GS_DE:
                return QEMU_SRR1_CAUSE
        return None
