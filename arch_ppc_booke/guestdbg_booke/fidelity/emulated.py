"""The program on the emulated e500mc, e5500 or e6500 KVM host, debugged through guestdbg as a
VMM would.

A ``Session`` over the VM the plugin's own host factory creates, software breakpoints at the
same addresses as on QEMU (trap words in guest memory, ``KVM_GUESTDBG_USE_SW_BP``), and a plain
resume/wait per stop. So what is compared is the whole stack a user gets: the host's kernel
model and engine, and guestdbg's filter, which must hand the guest's own 0x00dddd00 back to it
as the illegal instruction it is while keeping the host's trap words invisible. Registers come
through the GDB arch layout (KVM_GET_REGS and KVM_GET_SREGS behind it), memory through the
session's trap-shadowing read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guestdbg.events import ResumeAction, StopKind
from guestdbg.plugins import Registry, default_registry
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session

from .generator import Layout
from .trace import END_DONE, REGISTERS, State, Trace, memory_words

RAM_SIZE = 4 << 20
"""Guest RAM of the emulated VM. A program uses only its image at 1 MiB and its areas after it;
less RAM than QEMU's ppce500 gives it is invisible to it, and every program pays for allocating
its fresh VM's RAM (``emulated`` in the run's timing breakdown, ``Timings``)."""


class EmulatedE500mc:
    """The emulated host of ``core`` (e500mc, or the 64-bit e5500 and e6500 of the same
    ``kvm_e500mc`` model)."""

    def __init__(self, registry: Registry | None = None, core: str = "e500mc") -> None:
        self.registry = registry or default_registry()
        self.core = core
        self.host = self.registry.emulated_host(core)

    def trace(
        self, elf: Path, layout: Layout, breakpoints: Sequence[int], stop_timeout: float
    ) -> Trace:
        vm = self.host.create_vm(str(elf), smp=1, ram_size=RAM_SIZE)
        s = Session(vm, self.core, registry=self.registry)
        try:
            for addr in breakpoints:
                s.insert_point(DebugPoint(PointKind.SW_BREAK, addr, 4))
            names = [r.name for r in s.gdb_arch.registers]
            index = [(name, names.index(name)) for name in REGISTERS]
            mem = memory_words(layout)
            limit = layout.max_stops
            out = Trace()
            while True:
                s.resume({0: ResumeAction()})
                stop = s.wait_stop(timeout=stop_timeout)
                if stop is None:
                    s.interrupt()
                    s.wait_stop(timeout=stop_timeout)
                    out.end = f"timeout after {stop_timeout} s"
                    return out
                if stop.reason.kind is not StopKind.SW_BREAK:
                    out.end = f"stopped with {stop.reason.kind.value} at {stop.reason.pc:#x}"
                    return out
                regs = s.read_registers(0)
                state: State = {name: regs[n] for name, n in index}
                mem.add(state, s.read_memory(0, mem.addr, mem.size))
                out.states.append(state)
                if state["pc"] == layout.done:
                    out.end = END_DONE
                    return out
                if len(out.states) >= limit:
                    out.end = f"more than {limit} stops"
                    return out
        finally:
            s.close()
