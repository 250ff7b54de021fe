"""BookE exception numberspaces and the table between them.

* ``booke.ivor``: the Interrupt Vector Offset Register index (IVOR6 = program). KVM's BookE exit
  numbers (``BOOKE_INTERRUPT_*``, ``arch/powerpc/include/asm/kvm_asm.h``) are these indices.
* ``booke.ifo``: the fixed offset from IVPR on cores with interrupt fixed offsets (64-bit BookE;
  Linux ``exceptions-64e.S`` ``interrupt_base_book3e``; docs/reference/kvm-debug-abi.md
  §4, which flags the ISA equivalence as unverified).
* ``kvm.booke.prio``: Linux KVM's ``BOOKE_IRQPRIO_*`` queue bit (``arch/powerpc/kvm/booke.h``),
  the index of ``vcpu->arch.ivor[]`` and the order of delivery (lower first).

A row names one interrupt in every space that has it; where a space has no number (SPE
floating-point round has no fixed-offset slot; LRAT error, whose 0x340 slot is only remembered,
not read) conversion raises NoMapping instead of guessing.
"""

from __future__ import annotations

from guestdbg.numbering import EquivalenceTable, ExceptionId, Numberspace

IVOR = "booke.ivor"
IFO = "booke.ifo"
PRIO = "kvm.booke.prio"

# (name, ivor, fixed offset or None, kvm priority or None)
_ROWS = (
    ("critical input", 0, 0x020, 14),
    ("machine check", 1, 0x000, 12),
    ("data storage", 2, 0x060, 0),
    ("instruction storage", 3, 0x080, 1),
    ("external input", 4, 0x0A0, 16),
    ("alignment", 5, 0x0C0, 2),
    ("program", 6, 0x0E0, 3),
    ("floating-point unavailable", 7, 0x100, 4),
    ("system call", 8, 0x120, 8),
    ("auxiliary processor unavailable", 9, 0x140, 9),
    ("decrementer", 10, 0x160, 18),
    ("fixed-interval timer", 11, 0x180, 17),
    ("watchdog timer", 12, 0x1A0, 15),
    ("data TLB error", 13, 0x1C0, 10),
    ("instruction TLB error", 14, 0x1E0, 11),
    ("debug", 15, 0x040, 13),
    ("SPE/AltiVec unavailable", 32, 0x200, 5),
    ("SPE FP data / AltiVec assist", 33, 0x220, 6),
    ("SPE FP round", 34, None, 7),
    ("performance monitor", 35, 0x260, 19),
    ("processor doorbell", 36, 0x280, 21),
    ("processor doorbell critical", 37, 0x2A0, 22),
    ("guest processor doorbell", 38, 0x2C0, None),
    ("guest processor doorbell critical", 39, 0x2E0, None),
    ("hypervisor system call", 40, 0x300, None),
    ("hypervisor privilege", 41, 0x320, None),
    ("LRAT error", 42, None, None),
)

SPACES = (
    Numberspace(IVOR, "BookE IVOR index (= KVM BOOKE_INTERRUPT_*)", {r[1]: r[0] for r in _ROWS}),
    Numberspace(
        IFO,
        "BookE interrupt fixed offset from IVPR",
        {r[2]: r[0] for r in _ROWS if r[2] is not None},
    ),
    Numberspace(
        PRIO,
        "Linux KVM BOOKE_IRQPRIO_* (delivery order, index of vcpu->arch.ivor[])",
        {r[3]: r[0] for r in _ROWS if r[3] is not None} | {20: "external level (pseudo)"},
    ),
)


def _row(r: tuple[str, int, int | None, int | None]) -> dict[str, int]:
    out = {IVOR: r[1]}
    if r[2] is not None:
        out[IFO] = r[2]
    if r[3] is not None:
        out[PRIO] = r[3]
    return out


TABLE = EquivalenceTable(SPACES, [_row(r) for r in _ROWS])

PROGRAM = ExceptionId(IVOR, 6)
DEBUG = ExceptionId(IVOR, 15)
