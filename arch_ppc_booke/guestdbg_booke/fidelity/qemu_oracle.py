"""QEMU's ppce500 (TCG, ``-cpu e500mc``, ``e5500`` or ``e6500``) as the reference, driven
through its gdbstub.

The 32-bit e500mc runs on ``qemu-system-ppc``; the 64-bit cores on ``qemu-system-ppc64``, whose
gdbstub describes its core registers as ``powerpc:common64`` does (GPRs, PC, MSR, LR and CTR 64
bits, CR and XER 32), so the ``g`` reply is cut by each register's own size from the
description.

QEMU shares none of the emulated host's parts that matter here: its own CPU model version, its
own interrupt delivery (``powerpc_excp_booke``), its own idea of an illegal instruction. Its
debugging, though, is not a reference for everything: its single step over an instruction that
raises an interrupt stops at the handler's entry, where KVM's stops after the handler's first
instruction (docs/stepping.md; docs/reference/peers.md §1.5), so stops are reached only by
breakpoints and ``c``. Going on
from a breakpoint is: remove it, ``s`` (an ordinary instruction: safe), put it back, ``c`` (a
``c`` on a breakpoint would report it again without executing anything).

Round trips dominate, so every stop is three pipelined exchanges: read the state (``g``, the
four SPRs, the area's memory), remove the breakpoint and step, re-insert and continue.

Each program gets a fresh QEMU process, a large share of a program's time (``qemu_start`` in the
run's timing breakdown, printed by ``bench/fidelity.py``). Reusing one process (``monitor
system_reset``, then the next program written with ``M``) was measured and rejected: QEMU's reset
sets PC, r1, r3, r6 and r7 but leaves every other GPR, CR, LR, CTR and XER as the previous program
left them, so it is not the state a fresh ``-kernel`` start gives.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from guestdbg.errors import GuestDebugError

from .generator import Layout
from .rsp import RspClient, RspError, check
from .trace import END_DONE, REGISTERS, SPRS, MemoryWords, State, Trace, memory_words

QEMU = "qemu-system-ppc"
QEMU64 = "qemu-system-ppc64"
CORE_FEATURE = "org.gnu.gdb.power.core"
GPR_BITS = {"e500mc": 32, "e5500": 64, "e6500": 64}
"""The width of a core's GPRs in QEMU's description: what its binary must describe."""


def qemu_for(core: str) -> str:
    """The QEMU binary that has ``core``: the 64-bit cores are only in ``qemu-system-ppc64``."""
    return QEMU if GPR_BITS[core] == 32 else QEMU64


def available(qemu: str = QEMU) -> bool:
    return shutil.which(qemu) is not None


class QemuPpce500:
    """One ``qemu-system-ppc[64] -M ppce500 -cpu CORE -kernel ELF -S`` process, halted at the
    ELF's entry, its gdbstub on a Unix socket of our own (no TCP port to race for)."""

    def __init__(
        self, elf: Path, *, qemu: str = QEMU, core: str = "e500mc", timeout: float = 10.0
    ) -> None:
        self.core = core
        self._dir = tempfile.TemporaryDirectory(prefix="guestdbg-qemu-")
        path = str(Path(self._dir.name) / "gdb.sock")
        cmd = [qemu, "-M", "ppce500", "-cpu", core, "-nic", "none", "-S",
               "-gdb", f"unix:{path},server=on,wait=off", "-nographic", "-display", "none",
               "-serial", "null", "-monitor", "none", "-kernel", str(elf)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.rsp = RspClient(self._connect(path, timeout), timeout)
            self._learn_registers()
        except BaseException:
            self.close()
            raise

    def _connect(self, path: str, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return sock
            except OSError:
                sock.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise GuestDebugError(f"QEMU did not open its gdbstub: {err}") from None
                time.sleep(0.01)

    def _learn_registers(self) -> None:
        """Regnums from QEMU's own target description (its SPR feature has no fixed numbers),
        and the ``g`` layout that reading it selects: the core feature, in order."""
        regs = self.rsp.target_registers()
        by_name = {r.name: r for r in regs}
        core = [r for r in regs if r.feature == CORE_FEATURE]
        bits = GPR_BITS[self.core]
        if by_name["r0"].bitsize != bits:
            raise GuestDebugError(
                f"QEMU's GPRs are {by_name['r0'].bitsize}-bit, not {bits}: not this {self.core}"
            )
        self.g_names = [r.name for r in core]
        self.g_slices: list[tuple[int, int]] = []  # each register's [start, end) in the hex
        at = 0
        for r in core:
            self.g_slices.append((at, at + r.bitsize // 4))
            at += r.bitsize // 4
        self.spr_regnums = [by_name[name].regnum for name in SPRS]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.rsp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self._dir.cleanup()

    def __enter__(self) -> QemuPpce500:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- a run ------------------------------------------------------------------------------

    def _core(self, g: str) -> dict[str, int]:
        text = check(g, "g")
        size = self.g_slices[-1][1]
        if len(text) != size:
            raise RspError(f"g gave {len(text) // 2} bytes, the description {size // 2}")
        values = [int(text[a:b], 16) for a, b in self.g_slices]
        return dict(zip(self.g_names, values, strict=True))

    def core_registers(self) -> dict[str, int]:
        """The core feature's registers (r0-r31, pc, msr, cr, lr, ctr, xer) from one ``g``."""
        return self._core(self.rsp.command("g"))

    def state(self, mem: MemoryWords) -> State:
        """Core registers, the four SPRs and ``mem`` in one round trip."""
        packets = ["g", *(f"p{n:x}" for n in self.spr_regnums), f"m{mem.addr:x},{mem.size:x}"]
        g, *sprs, m = self.rsp.pipeline(packets)
        core = self._core(g)
        values = {
            **core,
            **{n: int(check(t, f"p {n}"), 16) for n, t in zip(SPRS, sprs, strict=True)},
        }
        out: State = {name: values.get(name) for name in REGISTERS}
        mem.add(out, bytes.fromhex(check(m, "m")))
        return out

    def trace(self, layout: Layout, breakpoints: Sequence[int], stop_timeout: float) -> Trace:
        """Stops at ``breakpoints`` from the entry until ``done``."""
        rsp = self.rsp
        for r in rsp.pipeline([f"Z0,{a:x},4" for a in breakpoints]):
            check(r, "Z0")
        out = Trace()
        mem = memory_words(layout)
        limit = layout.max_stops
        reply = self._resume(["c"], stop_timeout)
        while True:
            if not reply.startswith(("T05", "S05")):
                out.end = f"QEMU stopped with {reply!r}"
                return out
            state = self.state(mem)
            out.states.append(state)
            pc = state["pc"]
            if pc == layout.done:
                out.end = END_DONE
                return out
            if len(out.states) >= limit:
                out.end = f"more than {limit} stops"
                return out
            assert pc is not None
            step = self._resume([f"z0,{pc:x},4", "s"], stop_timeout)
            if not step.startswith(("T05", "S05")):
                out.end = f"QEMU's step from {pc:#x} stopped with {step!r}"
                return out
            reply = self._resume([f"Z0,{pc:x},4", "c"], stop_timeout)

    def _resume(self, packets: Sequence[str], timeout: float) -> str:
        """The stop reply after ``packets`` (the last resumes the guest), or a description of
        the timeout after interrupting the guest."""
        try:
            return self.rsp.resume(packets, timeout)
        except TimeoutError:
            self.rsp.interrupt()
            return f"timeout after {timeout} s ({self.rsp.reply()})"


@contextlib.contextmanager
def qemu_ppce500(elf: Path, *, qemu: str = QEMU, core: str = "e500mc") -> Iterator[QemuPpce500]:
    with QemuPpce500(elf, qemu=qemu, core=core) as q:
        yield q
