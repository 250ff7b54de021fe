"""Evaluations per second of two typical breakpoint conditions, as GDB compiles them.

A condition runs on every hit of its breakpoint, on the vCPU thread, inside the exit path, so
its cost adds to every stop the debugger does not see. The two expressions are the bytecode
gdb-multiarch sends for a 32-bit PowerPC target (``tests/conditions/test_gdb_bytecode.py``
checks the same encoding against GDB): ``$r3 == 5`` (a register condition) and
``*(int*)0x1100 == 42`` (a memory condition). The callbacks are what a caller would pass: the
registers already fetched (a list's ``__getitem__``), memory a bounds-checked slice of a
bytearray.

Usage: ``python bench/agent_expr.py [--seconds S]``; the last line is
``reg_evals_per_s=<int> mem_evals_per_s=<int>`` (the best of five rounds of each).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from guestdbg.conditions import AgentExpr, evaluate, parse_agent_expr
from guestdbg.errors import BadAddress

REG_COND = bytes.fromhex("2600032a2022052a201327")
"""reg 3; zero_ext 32; const8 5; zero_ext 32; equal; end"""
MEM_COND = bytes.fromhex("231100191620222a1327")
"""const16 0x1100; ref32; ext 32; const8 42; equal; end"""
RAM_BASE = 0x1000
RAM = bytearray(0x1000)
RAM[0x100:0x104] = (42).to_bytes(4, "big")
REGS = [0x01010101 * i for i in range(40)]
REGS[3] = 5


def mem(addr: int, size: int) -> bytes:
    off = addr - RAM_BASE
    if off < 0 or off + size > len(RAM):
        raise BadAddress(f"{addr:#x} is not guest memory")
    return bytes(RAM[off : off + size])


def rate(expr: AgentExpr, seconds: float) -> int:
    regs: Callable[[int], int] = REGS.__getitem__
    assert evaluate(expr, regs, mem, big_endian=True, addr_bits=32) == 1
    best = 0.0
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            for _ in range(1000):
                evaluate(expr, regs, mem, big_endian=True, addr_bits=32)
            n += 1000
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return int(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=2.5, help="per condition")
    a = ap.parse_args()
    reg = rate(parse_agent_expr(REG_COND), a.seconds)
    mem_rate = rate(parse_agent_expr(MEM_COND), a.seconds)
    print(f"register condition ($r3 == 5): {1e6 / reg:.2f} us per evaluation")
    print(f"memory condition (*(int*)0x1100 == 42): {1e6 / mem_rate:.2f} us per evaluation")
    print(f"reg_evals_per_s={reg} mem_evals_per_s={mem_rate}")


if __name__ == "__main__":
    main()
