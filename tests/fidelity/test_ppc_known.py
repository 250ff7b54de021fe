"""The documented differences: one table in docs/fidelity.md, the same keys in code, and each
recognised exactly (a near miss is not explained)."""

from __future__ import annotations

import re

from guestdbg_booke import regs
from guestdbg_booke.fidelity.known import (
    HV_MSR_GS_DE,
    KNOWN,
    QEMU_SRR1_CAUSE,
    Explainer,
)
from guestdbg_booke.fidelity.trace import mem_name

from .ppc_support import ROOT, built

GS_DE = regs.MSR_GS | regs.MSR_DE


def doc_keys() -> list[str]:
    """The keys of the PowerPC section's rows (the x86 section has its own)."""
    text = (ROOT / "docs" / "fidelity.md").read_text()
    part = text.split("## PowerPC e500mc", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", part, re.M)


def test_the_code_table_and_the_doc_table_name_the_same_keys() -> None:
    assert sorted(doc_keys()) == sorted(k.key for k in KNOWN)
    assert len({k.key for k in KNOWN}) == len(KNOWN)


def test_each_difference_is_explained_exactly_and_nothing_else_is() -> None:
    _, _, layout = built(1)
    explain = Explainer(layout)
    entry = layout.log(0)
    srr1, esr = mem_name(entry + 8), mem_name(entry + 12)
    ref_state = {esr: regs.ESR_PTR}
    assert explain("msr", 0x4000, 0x4000 | GS_DE, {}) is HV_MSR_GS_DE
    assert explain("msr", 0x4000, 0x4000 | regs.MSR_GS, {}) is None  # DE missing
    assert explain("msr", 0x4000, 0x4000 | GS_DE | regs.MSR_EE, {}) is None
    assert explain("r5", 0, GS_DE, {}) is None
    assert explain(srr1, 0x4000, 0x4000 | GS_DE, ref_state) is HV_MSR_GS_DE
    assert explain(srr1, 0x24000, 0x4000 | GS_DE, ref_state) is QEMU_SRR1_CAUSE
    assert explain(srr1, 0x84000, 0x4000 | GS_DE, ref_state) is None  # not a trap's bit
    assert explain("srr1", 0x24000, 0x4000 | GS_DE, ref_state) is None  # only the logged one
    assert explain(mem_name(entry + 4), 0x24000, 0x4000 | GS_DE, ref_state) is None
