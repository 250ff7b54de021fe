"""x86 exception vectors (SDM vol. 3 §6.3.1), the numberspace of the x86 exit's ``exception``."""

from __future__ import annotations

from guestdbg.numbering import EquivalenceTable, ExceptionId, Numberspace

VECTOR = "x86.vector"

NAMES = {
    0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM",
    8: "#DF", 10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF",
    17: "#AC", 18: "#MC", 19: "#XM", 20: "#VE", 21: "#CP",
}  # fmt: skip

SPACES = (Numberspace(VECTOR, "x86 exception vector", NAMES),)
TABLE = EquivalenceTable(SPACES, [])

DB = ExceptionId(VECTOR, 1)
BP = ExceptionId(VECTOR, 3)
