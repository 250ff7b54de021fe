"""The ``guestdbg`` command line. Errors become one readable line and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import GuestDebugError

if TYPE_CHECKING:
    from .arch import ArchInfo, CoreInfo
    from .plugins import Registry


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import default_registry

    reg = default_registry()
    if not reg.arches:
        print("no arch plugins installed (entry point group guestdbg.arch)")
        return 1
    for info in reg.arches.values():
        print(f"{info.name}: {info.description} (KVM host arch {info.kvm_host_arch})")
        for core in info.cores:
            print(f"  core {core.name}: {core.description} ({core.register_bits}-bit)")
            for key, value in core.caps.describe().items():
                print(f"    {key}: {value}")
            if args.probe:
                _print_host_report(reg, info, core)
        spaces = ", ".join(sorted(info.numbering.spaces))
        print(f"  exception numberspaces: {spaces}")
    hosts = reg.emulated_hosts()
    if hosts:
        print("emulated hosts: " + ", ".join(h.name for h in hosts))
    return 0


def _print_host_report(reg: Registry, info: ArchInfo, core: CoreInfo) -> None:
    """``--probe``: what this machine's /dev/kvm really delivers for ``core``."""
    from .kvm.device import machine_kvm_arch

    here = machine_kvm_arch()
    if here != info.kvm_host_arch:
        print(f"    on this machine: cannot run (its KVM is {here}, not {info.kvm_host_arch})")
        return
    report = reg.host_report(info, core)
    if report is None:
        print("    on this machine: not probed (the plugin has no guestdbg_host_report)")
        return
    lines = report.lines()
    print(f"    on this machine: {lines[0]}")
    for line in lines[1:]:
        print(f"    {line}")


def _parse_gdb_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise GuestDebugError(f"--gdb wants HOST:PORT (e.g. 127.0.0.1:1234), not {text!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def _serve(args: argparse.Namespace) -> int:
    import logging
    import pathlib

    from .gdb.server import GdbServer
    from .plugins import default_registry
    from .session import Session

    logging.basicConfig(level=logging.WARNING, format="guestdbg: %(message)s")
    elf = pathlib.Path(args.elf)
    if not elf.is_file():
        raise GuestDebugError(f"no such guest ELF: {elf}")
    if args.smp < 1 or args.smp > 64:
        raise GuestDebugError("--smp must be between 1 and 64")
    reg = default_registry()
    info, core = reg.resolve(args.arch)
    host = reg.kvm_host(core.name) if args.host == "kvm" else reg.emulated_host(core.name)
    vm = host.create_vm(str(elf), smp=args.smp)
    session = Session(vm, info, core.name, policy=args.policy, registry=reg)
    address: str | tuple[str, int] = args.unix if args.unix else _parse_gdb_address(args.gdb)
    server = GdbServer(session, address, allow_remote=args.allow_remote)
    bound = server.bound_address
    where = bound if isinstance(bound, str) else f"{bound[0]}:{bound[1]}"
    setup = " ".join(f"-ex '{c}'" for c in _gdb_setup(reg, info, core))
    print(
        f"guestdbg: {core.name} guest {elf.name} on {host.name} ({args.smp} vCPU), halted; "
        f"GDB: target remote {where}\n"
        f"guestdbg: e.g. gdb-multiarch {setup} -ex 'target remote {where}' {elf}",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        session.close()
    return 0


def _gdb_setup(reg: Registry, info: ArchInfo, core: CoreInfo) -> tuple[str, ...]:
    """What GDB must be told for this arch before connecting (the plugin's demo knows it:
    ``set endian big`` on PowerPC, because a target description carries no byte order)."""
    guest = reg.pm.hook.guestdbg_demo(arch=info, core=core)
    return tuple(getattr(guest, "gdb_setup", ()))


def _demo(args: argparse.Namespace) -> int:
    import logging

    from .demo import main_demo

    logging.basicConfig(level=logging.WARNING, format="guestdbg: %(message)s")
    return main_demo(args.arch, args.gdb, args.build_dir)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guestdbg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("plugins", help="list the installed arch plugins and their capabilities")
    sp.add_argument(
        "--probe",
        action="store_true",
        help="also say what this machine's /dev/kvm really delivers, per arch that can run "
        "here (a tiny probe VM tries each facility)",
    )
    sp.set_defaults(func=_plugins)
    sv = sub.add_parser(
        "serve", help="run a guest, halted, under a GDB stub (emulated host or /dev/kvm)"
    )
    sv.add_argument("--arch", default="e500mc", help="arch or core name (default e500mc)")
    sv.add_argument(
        "--host",
        default="emulated",
        choices=("emulated", "kvm"),
        help="where the guest runs: the arch's emulated KVM host (default), or this machine's "
        "/dev/kvm (QEMU's -s -S on real KVM: x86_64 guests here)",
    )
    sv.add_argument("--elf", required=True, help="bare-metal guest ELF to load")
    sv.add_argument("--gdb", default="127.0.0.1:1234", help="HOST:PORT to listen on")
    sv.add_argument("--unix", default=None, help="listen on this Unix socket path instead")
    sv.add_argument("--smp", type=int, default=1, help="number of vCPUs (default 1)")
    sv.add_argument(
        "--policy",
        default="host-priority",
        choices=("host-priority", "guest-priority"),
        help="who owns the debug facility when host and guest both want it",
    )
    sv.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --gdb address (anyone who reaches it owns the guest)",
    )
    sv.set_defaults(func=_serve)
    dm = sub.add_parser(
        "demo",
        help="drive a real GDB through breakpoints, a watchpoint, a step and a guest trap "
        "that is handed back to the guest, on an emulated host; prints a transcript",
    )
    dm.add_argument("--arch", default="e500mc", help="arch or core name (default e500mc)")
    dm.add_argument("--gdb", default="gdb-multiarch", help="the GDB to drive")
    dm.add_argument("--build-dir", default=None, help="where to build the demo guest")
    dm.set_defaults(func=_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except GuestDebugError as e:
        print(f"guestdbg: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``guestdbg plugins | head``): nothing left to say, and the
        # interpreter must not try to flush into the closed pipe again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
