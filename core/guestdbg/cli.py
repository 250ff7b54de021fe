"""The ``guestdbg`` command line. Errors become one readable line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import GuestDebugError


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import default_registry

    reg = default_registry()
    if not reg.arches:
        print("no arch plugins installed (entry point group guestdbg.arch)")
        return 1
    for info in reg.arches.values():
        print(f"{info.name}: {info.description} (KVM host arch {info.kvm_host_arch})")
        for core in info.cores:
            print(f"  core {core.name}: {core.description}")
            for key, value in core.caps.describe().items():
                print(f"    {key}: {value}")
        spaces = ", ".join(sorted(info.numbering.spaces))
        print(f"  exception numberspaces: {spaces}")
    hosts = reg.emulated_hosts()
    if hosts:
        print("emulated hosts: " + ", ".join(h.name for h in hosts))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guestdbg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("plugins", help="list the installed arch plugins and their capabilities")
    sp.set_defaults(func=_plugins)
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
