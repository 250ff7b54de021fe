"""``guestdbg demo``: a real GDB session on an emulated host, printed as a readable transcript.

:func:`run_demo` builds the arch plugin's sample guest, starts it on the plugin's emulated KVM
host under a :class:`~guestdbg.session.Session` and the GDB stub, drives ``gdb-multiarch``
through a software breakpoint, a single step, a hardware breakpoint, a write watchpoint and the
guest's own breakpoint instruction (handed back to the guest), then detaches; each step is
checked (:class:`~guestdbg.demo.script.DemoFailed` otherwise) and explained.

Modules: ``guest`` (what a plugin supplies), ``gdbmi`` (GDB through MI), ``script`` (the steps),
``transcript`` (the output), ``elf_info`` (symbols and code ranges).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ..errors import GuestDebugError, UnknownArch
from ..guest_build import cache_dir
from .script import DemoFailed

__all__ = ["DemoFailed", "default_build_dir", "run_demo"]


def default_build_dir() -> Path:
    """Where the demo guest is built: the user's cache, or a temporary directory."""
    return cache_dir("demo")


def run_demo(
    arch: str = "e500mc",
    *,
    gdb: str = "gdb-multiarch",
    build_dir: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the demo; returns the number of steps shown. Raises GuestDebugError (DemoFailed
    for a step that misbehaved) with a one-line message."""
    from ..gdb.server import GdbServer
    from ..plugins import default_registry
    from ..session import Session
    from .elf_info import code_ranges, symbols
    from .gdbmi import GdbMi
    from .guest import ROLES, DemoGuest
    from .script import Demo, HostView
    from .transcript import Transcript

    t = Transcript(out if out is not None else sys.stdout)
    reg = default_registry()
    info, core = reg.resolve(arch)
    guest = reg.pm.hook.guestdbg_demo(arch=info, core=core)
    if not isinstance(guest, DemoGuest):
        raise UnknownArch(f"no installed plugin ships a demo guest for {core.name}")
    missing = [r for r in ROLES if r not in guest.symbols]
    if missing:
        raise DemoFailed(f"the {info.name} demo guest names no symbol for {missing}")
    host = reg.emulated_host(core.name)
    elf = guest.build(guest.source, build_dir or default_build_dir())
    sym = symbols(elf)
    absent = sorted(name for name in guest.symbols.values() if name not in sym)
    if absent:
        raise DemoFailed(f"{elf.name} lacks the symbols {absent}")
    addr = {role: sym[name] for role, name in guest.symbols.items()}
    t.title(f"guestdbg demo: {core.name} guest {guest.source.name} on {host.description}")
    t.title(f"guest ELF: {elf}")

    vm = host.create_vm(str(elf), smp=1)
    session = Session(vm, info, core.name, registry=reg, attach=False)
    try:
        view = HostView(vm, session.gdb_arch.byteorder)
        view.snapshot_code(code_ranges(elf))
        for a in addr.values():
            view.map(a, 4)
        server = GdbServer(session, ("127.0.0.1", 0))
        server.start()
        try:
            bound = server.bound_address
            assert isinstance(bound, tuple)
            t.title(f"GDB stub: 127.0.0.1:{bound[1]} (loopback only), guest halted at its entry")
            with GdbMi(elf, gdb=gdb) as g:
                Demo(guest, addr, view, session.gdb_arch, g, bound[1], t).run()
        finally:
            server.close()
    finally:
        session.close()
    t.title("")
    t.title(f"demo finished: {t.steps} steps, each checked against the guest and the host")
    return t.steps


def main_demo(arch: str, gdb: str, build_dir: str | None) -> int:
    """The CLI's entry: exit status 0 on success; a failure is one GuestDebugError whose
    message is one line (an assembler's report, say, is folded onto it)."""
    try:
        run_demo(arch, gdb=gdb, build_dir=Path(build_dir) if build_dir else None)
    except GuestDebugError as e:
        if "\n" not in str(e):
            raise
        raise GuestDebugError(_one_line(str(e))) from e
    except Exception as e:  # a bug: still one line for the user
        text = _one_line(f"demo failed with an internal error: {type(e).__name__}: {e}")
        raise GuestDebugError(text) from e
    return 0


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())
