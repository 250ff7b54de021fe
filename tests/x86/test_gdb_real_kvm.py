"""Real gdb-multiarch against guests on this machine's ``/dev/kvm`` (issue 17).

* ``guestdbg serve --host kvm``: QEMU's ``-s -S`` on real KVM - the guest booted in long mode at
  CPL0, halted, the stub listening; ``hbreak``, ``stepi``, ``continue``, ``detach``.
* What the host does not deliver is refused where GDB asks for it, with the reason in the stub's
  error reply (``E.nn.reason``): on kvm_pvm ``break`` (int3 at CPL0 is an emulation failure) and
  ``watch`` (data breakpoints never fire), instead of a guest stuck at its breakpoint or a
  ``continue`` that never returns. GDB 13 prints the reason for a hardware breakpoint only; for
  the others it is in the reply (``set debug remote 1``) and in the stub's log.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from guestdbg.capabilities import CapabilityLimits
from guestdbg.gdb.server import GdbServer
from guestdbg.points import PointKind
from guestdbg.session.session import Session
from guestdbg_x86 import boot

from . import machines

pytestmark = [
    pytest.mark.gdb,
    pytest.mark.realkvm,
    pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch"),
]
EXAMPLE_GUESTS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "guests"


@pytest.fixture
def real_kvm() -> None:
    reason = machines.kvm_unusable()
    if reason is not None:
        pytest.skip(reason)


def gdb(commands: list[str]) -> subprocess.CompletedProcess[str]:
    argv = ["gdb-multiarch", "-nx", "-batch", *(a for c in commands for a in ("-ex", c))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.fixture
def served(real_kvm: None, tmp_path: pathlib.Path) -> Iterator[tuple[pathlib.Path, str]]:
    """``guestdbg serve --host kvm`` on the example VMM's guest: (its ELF, HOST:PORT)."""
    elf = machines.build("x86_vmm", tmp_path, EXAMPLE_GUESTS)
    argv = [sys.executable, "-m", "guestdbg", "serve", "--host", "kvm", "--arch", "x86_64",
            "--elf", str(elf), "--gdb", "127.0.0.1:0"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.search(r"target remote (\S+)", first)
        assert found, first + proc.stderr.read() if proc.stderr else first
        assert "on x86_64-kvm (1 vCPU), halted" in first, first
        yield elf, found.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_host_kvm_is_qemus_dash_s_dash_capital_s_on_real_kvm(
    served: tuple[pathlib.Path, str],
) -> None:
    elf, where = served
    out = gdb(["set confirm off", f"file {elf}", f"target remote {where}",
               "info registers rip", "hbreak *bp_target", "continue", "stepi",
               "info registers rip rax", "continue", "continue", "info registers rax",
               "delete", "detach"])  # fmt: skip
    text = out.stdout
    assert out.returncode == 0, out.stderr
    image = boot.read_image(elf)
    rips = [int(v, 16) for v in re.findall(r"^rip\s+(0x[0-9a-f]+)", text, re.M)]
    assert rips == [image.entry, image["console_out"]], text  # halted at entry; one stepi on
    assert len(re.findall(r"^Breakpoint 1, 0x[0-9a-f]+ in bp_target", text, re.M)) == 2, text
    # the out to port 0xe9 between them is no device of serve's: a halt, and the guest runs on
    console = out.stderr  # GDB writes the stub's O packets there in batch mode
    assert "guestdbg: KVM_EXIT_IO on vCPU 0: the device model stopped the guest" in console
    assert "Program stopped." in text, text
    assert re.search(r"^rax\s+0x12\s", text, re.M), text  # round 2 stopped before its add
    assert "[Inferior 1 (Remote target) detached]" in text, text


@pytest.fixture
def stub_on_real_kvm(
    real_kvm: None, x86_guests: Callable[[str], pathlib.Path]
) -> Iterator[Callable[..., tuple[pathlib.Path, str]]]:
    """A Session on a real-KVM machine served by a GdbServer in this process."""
    opened: list[tuple[machines.Machine, Session, GdbServer]] = []

    def open_stub(**session_options: object) -> tuple[pathlib.Path, str]:
        elf = x86_guests("reinject")
        m = machines.real(elf)
        m.start_at("watch_start")
        s = Session(m.vm, "x86", **session_options)  # type: ignore[arg-type]
        srv = GdbServer(s, ("127.0.0.1", 0))
        srv.start()
        opened.append((m, s, srv))
        host, port = srv.bound_address
        return elf, f"{host}:{port}"

    yield open_stub
    for m, s, srv in opened:
        srv.close()
        s.close()
        m.close()


def test_break_and_watch_are_refused_by_gdb_with_the_hosts_reason(
    stub_on_real_kvm: Callable[..., tuple[pathlib.Path, str]],
) -> None:
    from guestdbg_x86 import host_probe

    found = host_probe.probed()
    if found.delivered("int3") or found.delivered("write watchpoint"):
        pytest.skip(f"this /dev/kvm delivers int3 or watchpoints ({found.module})")
    elf, where = stub_on_real_kvm()
    out = gdb(["set confirm off", f"file {elf}", f"target remote {where}",
               "break *watch_done", "set debug remote 1", "continue", "set debug remote 0",
               "delete", "watch *(int *)&watched", "set debug remote 1", "continue",
               "set debug remote 0", "delete", "hbreak *watch_done", "continue",
               "info registers rip", "detach"])  # fmt: skip
    err = out.stderr
    assert "Cannot insert breakpoint 1." in err, err
    assert re.search(
        r"Packet received: E\.5f\.this kernel reports int3 at CPL0 as an emulation failure "
        r"\(KVM_EXIT_INTERNAL_ERROR\), not as a debug exit: use hbreak",
        err,
    ), err
    assert "Could not insert hardware watchpoint 2." in err, err
    assert "Packet received: E.5f.this kernel never fires data breakpoints at guest CPL0" in err
    # hbreak is delivered: the guest was never stuck, and the session went on
    assert re.search(r"^Breakpoint 3, 0x[0-9a-f]+ in watch_done", out.stdout, re.M), out.stdout
    assert "[Inferior 1 (Remote target) detached]" in out.stdout


def test_gdb_prints_the_reason_a_hardware_breakpoint_is_refused(
    stub_on_real_kvm: Callable[..., tuple[pathlib.Path, str]],
) -> None:
    """For ``Z1`` GDB 13 prints what follows ``E.nn.`` (remote.c insert_hw_breakpoint)."""
    limits = CapabilityLimits(refuse={PointKind.HW_BREAK: "the VMM keeps DR0-DR3 for itself"})
    elf, where = stub_on_real_kvm(limits=limits)
    out = gdb(["set confirm off", f"file {elf}", f"target remote {where}",
               "hbreak *watch_done", "continue", "detach"])  # fmt: skip
    assert (
        "Cannot insert hardware breakpoint 1:Remote failure reply: "
        "the VMM keeps DR0-DR3 for itself." in out.stderr
    ), out.stderr
