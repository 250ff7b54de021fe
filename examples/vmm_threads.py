"""A VMM that keeps its own vCPU threads, debugged with guestdbg while its guest runs.

Run it::

    python examples/vmm_threads.py --gdb-selftest                  # emulated e500mc, 2 vCPUs
    python examples/vmm_threads.py --host kvm --gdb-selftest       # this machine's /dev/kvm
    python examples/vmm_threads.py --host emulated-x86 --gdb-selftest
    python examples/vmm_threads.py                                 # then attach your own GDB

The VMM starts one thread per vCPU that runs ``KVM_RUN`` in a loop and hands every exit to its
own device model; the only guestdbg code in that loop is the two calls of the vCPU's port
(:class:`VcpuThreads`). A :class:`guestdbg.session.Session` made with ``vcpu_threads="vmm"``
never runs a vCPU itself: when GDB connects, it kicks every vCPU (the VMM's own kick) and each
thread parks in ``before_run`` at its next exit; while GDB holds the VM the threads wait there;
``detach`` lets them run on. With ``--gdb-selftest`` gdb-multiarch attaches while the guest
counts, stops it at a hardware breakpoint, single-steps, reads the counter, and detaches; the
example then checks that every vCPU counts on.

Exit status: 0 when every check passed; 1 with one line saying what failed; 77 when this
machine cannot run the chosen host (no usable /dev/kvm, a missing tool).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from serve_gdb import gdb_command, gdb_failure, run_gdb_batch, wait_for_detach
from vmm_debug_loop import ExampleFailed

from guestdbg.demo.elf_info import symbols
from guestdbg.errors import GuestDebugError
from guestdbg.gdb.server import GdbServer
from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason
from guestdbg.plugins import default_registry
from guestdbg.session import Next, Session
from guestdbg.vcpu import VmHandle

HERE = pathlib.Path(__file__).resolve().parent
VCPUS = 2
RAM_SIZE = 4 << 20
EXIT_SKIPPED = 77
DeviceModel = Callable[[int, int, memoryview], bool]


class VcpuThreads:
    """The VMM's vCPU threads. guestdbg's part is the two port calls in ``_loop``; everything
    else (the threads, KVM_RUN, the device model, shutting down) stays the VMM's."""

    def __init__(self, vm: VmHandle, session: Session, device: DeviceModel) -> None:
        self.vm = vm
        self.session = session
        self.device = device
        self.quit = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"vmm-vcpu{i}", daemon=True)
            for i in range(len(vm.vcpus))
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _loop(self, index: int) -> None:
        vcpu = self.vm.vcpus[index]
        port = self.session.port(index)
        while not self.quit.is_set():
            port.before_run()  # parks here while a debugger holds the VM
            reason = vcpu.run()  # KVM_RUN
            nxt = port.after_exit(reason)
            if nxt is Next.DEVICE and not self.device(index, reason, vcpu.kvm_run):
                port.halt("the device model stopped the guest")

    def stop(self) -> None:
        """Shut down: the session lets go of the vCPUs first, then each thread leaves its loop
        at its next exit (the kick makes one)."""
        self.session.close()
        self.quit.set()
        for v in self.vm.vcpus:
            v.kick()
        for t in self.threads:
            t.join(5)


def no_device(index: int, reason: int, run: memoryview) -> bool:
    """The counting guests make no I/O: any exit the debugger does not claim stops them."""
    print(f"  vCPU {index}: unexpected exit {reason}; the VMM stops the guest")
    return False


# -- the hosts --------------------------------------------------------------------------------


def build(host: str, out_dir: pathlib.Path) -> pathlib.Path:
    if host == "emulated-e500mc":
        from guestdbg_booke.guests import build as build_ppc

        return build_ppc(HERE / "guests" / "e500mc_count.S", out_dir)
    obj, elf = out_dir / "x86_count.o", out_dir / "x86_count.elf"
    for cmd in (
        ["gcc", "-c", "-o", str(obj), str(HERE / "guests" / "x86_count.S")],
        ["ld", "-N", "-Ttext=0x10000", "-e", "start", "--build-id=none",
         "--no-warn-rwx-segments", "-o", str(elf), str(obj)],
    ):  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise ExampleFailed(f"{cmd[0]} failed: {out.stderr.strip().splitlines()[-1]}")
    return elf


def new_vm(host: str, elf: pathlib.Path) -> tuple[VmHandle, str, Kvm | None]:
    """The VM, the arch name for the session, and the KVM system object to close (real KVM)."""
    reg = default_registry()
    if host == "emulated-e500mc":
        return reg.emulated_host("e500mc").create_vm(str(elf), smp=VCPUS), "e500mc", None
    if host == "emulated-x86":
        vm = reg.emulated_host("x86_64-unicorn").create_vm(elf, smp=VCPUS, ram_size=RAM_SIZE)
        return vm, "x86", None
    from guestdbg_x86 import boot

    kvm = Kvm(reg.arches["x86"].layout())
    vm = kvm.create_vm()
    vm.add_memory(0, RAM_SIZE)
    for _ in range(VCPUS):
        vm.create_vcpu()
    boot.boot(vm, boot.read_image(elf), RAM_SIZE)
    return vm, "x86", kvm


def counts(vm: VmHandle, arch: str, at: int) -> list[int]:
    """The guest's counters as the VMM reads guest RAM."""
    if arch == "x86":
        return [int.from_bytes(vm.read_phys(at, 8), "little")]
    raw = vm.read_phys(at, 4 * VCPUS)
    return [int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(VCPUS)]


def counting(vm: VmHandle, arch: str, at: int) -> list[int]:
    """Two readings 50 ms apart; every counter must have moved."""
    first = counts(vm, arch, at)
    time.sleep(0.05)
    now = counts(vm, arch, at)
    if not all(b > a for a, b in zip(first, now, strict=True)):
        raise ExampleFailed(f"the guest does not count: {first} then {now}")
    return now


# -- GDB ----------------------------------------------------------------------------------------


def run_gdb(elf: pathlib.Path, where: str, arch: str, sym: dict[str, int]) -> None:
    setup = ("set endian big",) if arch != "x86" else ()
    commands = (
        "set confirm off",
        "info threads",
        "hbreak *store",
        "continue",
        "stepi",
        "x/2wx &counts" if arch != "x86" else "x/1gx &counts",
        "delete",
        "detach",
    )
    out = run_gdb_batch(gdb_command(where, *setup, f"file {elf}", commands=commands))
    text = out.stdout
    threads = len(re.findall(r"^\*?\s+\d+\s+Thread ", text, re.M))
    hit = re.search(r"Breakpoint 1, (0x[0-9a-f]+) in store", text)
    after = text[hit.end() :] if hit else ""
    stepped = re.search(r"^(0x[0-9a-f]+) in \w+", after, re.M)
    ok = hit is not None and int(hit.group(1), 16) == sym["store"] and "detached" in text
    ok = ok and stepped is not None and int(stepped.group(1), 16) != sym["store"]
    if out.returncode != 0 or threads != VCPUS or not ok:
        raise gdb_failure(out, f"threads={threads}, hit={hit}, stepped={stepped}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", choices=["emulated-e500mc", "emulated-x86", "kvm"],
                   default="emulated-e500mc")  # fmt: skip
    p.add_argument("--gdb-selftest", action="store_true", help="run gdb-multiarch against it")
    p.add_argument("--gdb", default="127.0.0.1:0", help="loopback HOST:PORT (0: any free port)")
    args = p.parse_args(argv)
    tools = ["gdb-multiarch"] if args.gdb_selftest else []
    tools += ["powerpc-linux-gnu-as"] if args.host == "emulated-e500mc" else ["gcc", "ld"]
    missing = [t for t in tools if shutil.which(t) is None]
    reason = f"{missing[0]} is not installed (tools/bootstrap.sh installs it)" if missing else None
    if reason is None and args.host == "kvm":
        if machine_kvm_arch() != "x86_64":
            reason = f"the guest is x86-64; this machine is {machine_kvm_arch()}"
        else:
            reason = unusable_reason(default_registry().arches["x86"].layout())
    if reason is not None:
        print(f"SKIPPED: {reason}")
        return EXIT_SKIPPED
    host, _, port = args.gdb.rpartition(":")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            elf = build(args.host, pathlib.Path(tmp))
            sym = symbols(elf)
            vm, arch, kvm = new_vm(args.host, elf)
            session = Session(vm, arch, vcpu_threads="vmm")  # attaches when GDB connects
            threads = VcpuThreads(vm, session, no_device)
            threads.start()
            try:
                print(
                    f"the VMM's threads run the guest: counts {counting(vm, arch, sym['counts'])}"
                )
                detached = threading.Event()
                with GdbServer(session, (host, int(port)), on_detach=detached.set) as server:
                    server.start()
                    bound = server.bound_address
                    assert isinstance(bound, tuple)
                    where = f"{bound[0]}:{bound[1]}"
                    if args.gdb_selftest:
                        run_gdb(elf, where, arch, sym)
                    else:
                        setup = ["set endian big"] if arch != "x86" else []
                        print(
                            "attach with: " + shlex.join(gdb_command(where, *setup, f"file {elf}"))
                        )
                        wait_for_detach(detached)
                print(f"after detach the guest counts on: {counting(vm, arch, sym['counts'])}")
            finally:
                threads.stop()
                if kvm is not None:
                    kvm.close()
    except (ExampleFailed, GuestDebugError) as e:
        print(f"FAILED: {e}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
