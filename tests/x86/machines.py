"""One guest on either x86 host - the emulated one or this machine's /dev/kvm - behind the
same few calls, so a test states a behaviour once and runs it on both.

Guests are GNU as sources in ``tests/guests/x86`` (through ``gcc -c``, which preprocesses
``.S``), linked at 0x10000 and booted by :mod:`guestdbg_x86.boot`; every address a test uses
comes from the ELF's symbols. Every KVM_RUN a test makes directly is bounded: a timer kicks the
vCPU, so a hung guest fails the test instead of hanging the suite.
"""

from __future__ import annotations

import functools
import pathlib
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guestdbg import plugins
from guestdbg.kvm import constants as C
from guestdbg.kvm.device import Kvm, machine_kvm_arch, unusable_reason
from guestdbg.points import PointKind
from guestdbg.vcpu import VcpuHandle, VmHandle
from guestdbg_x86 import abi, boot, host_probe

GUESTS = pathlib.Path(__file__).resolve().parents[1] / "guests" / "x86"
RAM_SIZE = 4 << 20
RUN_TIMEOUT = 10.0
LAYOUT = abi.layout()
EMULATED_HOST = "x86_64-unicorn"
KINDS = ("emulated", "kvm")


def build(source: str, out_dir: pathlib.Path, src_dir: pathlib.Path = GUESTS) -> pathlib.Path:
    obj, elf = out_dir / f"{source}.o", out_dir / f"{source}.elf"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src_dir / f"{source}.S")], check=True)
    subprocess.run(
        ["ld", "-N", "-Ttext=0x10000", "-e", "start", "--build-id=none",
         "--no-warn-rwx-segments", "-o", str(elf), str(obj)],
        check=True,
    )  # fmt: skip
    return elf


@functools.cache
def kvm_unusable() -> str | None:
    """Why real /dev/kvm cannot run these guests here, or None."""
    if machine_kvm_arch() != "x86_64":
        return f"the x86 guests need an x86-64 /dev/kvm; this machine is {machine_kvm_arch()}"
    return unusable_reason(LAYOUT)


@dataclass
class Machine:
    kind: str
    vm: VmHandle
    image: boot.GuestImage
    owner: Any = None
    """What must be closed with the machine (the Kvm system object)."""
    _fields: dict[tuple[str, ...], Any] = field(default_factory=dict)

    @property
    def vcpu(self) -> VcpuHandle:
        return self.vm.vcpus[0]

    def sym(self, name: str) -> int:
        return self.image[name]

    def _f(self, *path: str | int) -> Any:
        key = tuple(str(p) for p in path)
        if key not in self._fields:
            self._fields[key] = LAYOUT.field(path[0], *path[1:])  # type: ignore[arg-type]
        return self._fields[key]

    def reg(self, name: str) -> int:
        return int(self._f("struct kvm_regs", name).get(self.vcpu.get_regs()))

    def set_regs(self, **values: int) -> None:
        regs = self.vcpu.get_regs()
        for name, value in values.items():
            self._f("struct kvm_regs", name).put(regs, value)
        self.vcpu.set_regs(bytes(regs))

    def start_at(self, symbol: str) -> None:
        boot.start_at(self.vcpu, LAYOUT, self.sym(symbol), self.sym("stack_top"))

    def guest_debug(self, control: int, debugreg: Mapping[int, int] | None = None) -> None:
        dbg = LAYOUT.new("struct kvm_guest_debug")
        self._f("struct kvm_guest_debug", "control").put(dbg, control)
        for n, value in (debugreg or {}).items():
            self._f("struct kvm_guest_debug", "arch", "debugreg", n).put(dbg, value)
        self.vcpu.set_guest_debug(bytes(dbg))

    def run(self) -> int:
        """One KVM_RUN, kicked after RUN_TIMEOUT; a kicked run fails the calling test."""
        timer = threading.Timer(RUN_TIMEOUT, self.vcpu.kick)
        timer.start()
        try:
            reason = self.vcpu.run()
        finally:
            timer.cancel()
        assert reason != C.KVM_EXIT_INTR, f"no exit within {RUN_TIMEOUT}s: the guest hung"
        return reason

    def debug_exit(self) -> tuple[int, int, int]:
        """(exception, pc, dr6) of the last KVM_EXIT_DEBUG; dr7 is not read (kvm_pvm says 0)."""
        run = self.vcpu.kvm_run
        return (
            self._f("struct kvm_run", "debug", "arch", "exception").get(run),
            self._f("struct kvm_run", "debug", "arch", "pc").get(run),
            self._f("struct kvm_run", "debug", "arch", "dr6").get(run),
        )

    def u64(self, symbol: str) -> int:
        return int.from_bytes(self.vm.read_phys(self.sym(symbol), 8), "little")

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()


def emulated(elf: pathlib.Path, **options: Any) -> Machine:
    host = plugins.load().emulated_host(EMULATED_HOST)
    vm = host.create_vm(elf, ram_size=RAM_SIZE, **options)
    return Machine("emulated", vm, boot.read_image(elf))


def real(elf: pathlib.Path) -> Machine:
    kvm = Kvm(LAYOUT)
    try:
        vm = kvm.create_vm()
        vm.add_memory(0, RAM_SIZE)
        vm.create_vcpu()
        image = boot.read_image(elf)
        boot.boot(vm, image, RAM_SIZE)
    except BaseException:
        kvm.close()
        raise
    return Machine("kvm", vm, image, owner=kvm)


def refusal(m: Machine, kind: PointKind) -> str | None:
    """Why a session on ``m``'s host refuses points of ``kind`` (None: the host delivers them):
    the emulated host delivers everything, this /dev/kvm what the x86 plugin's probe found."""
    if m.kind != "kvm":
        return None
    return host_probe.refusals(host_probe.probed()).get(kind)


def copy_state(src: Machine, dst: Machine) -> None:
    """What a VMM migrates: RAM, registers, system registers, the guest's debug registers."""
    dst.vm.write_phys(0, src.vm.read_phys(0, RAM_SIZE))
    dst.vcpu.set_sregs(bytes(src.vcpu.get_sregs()))
    dst.vcpu.set_regs(bytes(src.vcpu.get_regs()))
    dst.vcpu.set_debugregs(bytes(src.vcpu.get_debugregs()))  # type: ignore[attr-defined]
