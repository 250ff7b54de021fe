"""The toy's two exception numberspaces: the ISA's vectors and the toy KVM's queue priorities.

Two spaces because a real arch has them too (BookE IVOR vs ``BOOKE_IRQPRIO_*``): the exit
reports a vector, while the kernel's injection interface takes a priority. Reset has a vector
but no priority (it cannot be queued), so converting it is a NoMapping, not a guess.
"""

from __future__ import annotations

from guestdbg.numbering import EquivalenceTable, ExceptionId, Numberspace

VECTOR = "toy-vector"
PRIO = "toy-kvm-prio"

RESET, TRAP, DEBUG, ILLEGAL, BUS = 0, 1, 2, 3, 4

SPACES = (
    Numberspace(
        VECTOR,
        "toy ISA exception vector (handler at vbar + 16 * vector)",
        {RESET: "reset", TRAP: "trap", DEBUG: "debug", ILLEGAL: "illegal", BUS: "bus"},
    ),
    Numberspace(
        PRIO,
        "toy KVM exception queue priority (lower is delivered first)",
        {0: "PRIO_DEBUG", 1: "PRIO_BUS", 2: "PRIO_ILLEGAL", 3: "PRIO_TRAP"},
    ),
)
TABLE = EquivalenceTable(
    SPACES,
    [
        {VECTOR: DEBUG, PRIO: 0},
        {VECTOR: BUS, PRIO: 1},
        {VECTOR: ILLEGAL, PRIO: 2},
        {VECTOR: TRAP, PRIO: 3},
    ],
)

TRAP_ID = ExceptionId(VECTOR, TRAP)
DEBUG_ID = ExceptionId(VECTOR, DEBUG)
