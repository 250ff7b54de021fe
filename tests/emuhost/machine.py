"""Test helpers: a guest ELF on an emulated e500 host, driven through the KVM byte interface.

Everything goes through ``VcpuHandle``/``VmHandle`` with the uapi layout, as a VMM would; the
model's internals are only touched where a test says so (white-box checks of the engine).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guestdbg.emuhost import image
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT, HOSTIO_DONE, EmulatedBookeVm
from guestdbg_booke.emuhost.vcpu import EmulatedBookeVcpu
from guestdbg_booke.guests import build

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "guests" / "ppc"
BUILD = ROOT / "tests" / "guests" / "build" / "ppc"
GUESTS64 = ROOT / "tests" / "guests" / "ppc64"
BUILD64 = ROOT / "tests" / "guests" / "build" / "ppc64"
CORES = ("e500mc", "e500v2")
CORES64 = ("e5500", "e6500")
"""The 64-bit BookE-HV cores (kvm_e500mc on a 64-bit host)."""


def is_hv(core: str) -> bool:
    """BookE-HV (kvm_e500mc: e500mc, e5500, e6500) rather than BookE-PR (e500v2)."""
    return core != "e500v2"


L = abi.layout()
RUN = "struct kvm_run"
REGS = "struct kvm_regs"
SREGS = "struct kvm_sregs"
GD = "struct kvm_guest_debug"


@functools.cache
def guest(name: str) -> Path:
    """The ELF of ``tests/guests/ppc/NAME.S``, or of ``tests/guests/ppc64/NAME.S`` (64-bit)."""
    if (GUESTS / f"{name}.S").exists():
        return build(GUESTS / f"{name}.S", BUILD)
    return build(GUESTS64 / f"{name}.S", BUILD64)


symbols = functools.cache(image.symbols)


def guest_debug(control: int, bps: list[tuple[int, int]] | None = None) -> bytes:
    buf = bytearray(L.sizeof(GD))
    L.field(GD, "control").put(buf, control)
    for n, (addr, typ) in enumerate(bps or []):
        L.field(GD, "arch", "bp", n, "addr").put(buf, addr)
        L.field(GD, "arch", "bp", n, "type").put(buf, typ)
    return bytes(buf)


@dataclass
class Exit:
    reason: int
    address: int
    status: int
    mmio_addr: int
    mmio_data: bytes
    mmio_write: bool
    hw_reason: int

    @property
    def mmio_word(self) -> int:
        return int.from_bytes(self.mmio_data[:4], "big")


def read_exit(run: memoryview) -> Exit:
    size = L.field(RUN, "mmio", "len").get(run)
    off = L.offsetof(RUN, "mmio", "data")
    return Exit(
        reason=L.field(RUN, "exit_reason").get(run),
        address=L.field(RUN, "debug", "arch", "address").get(run),
        status=L.field(RUN, "debug", "arch", "status").get(run),
        mmio_addr=L.field(RUN, "mmio", "phys_addr").get(run),
        mmio_data=bytes(run[off : off + min(size, 8)]),
        mmio_write=bool(L.field(RUN, "mmio", "is_write").get(run)),
        hw_reason=L.field(RUN, "hw", "hardware_exit_reason").get(run),
    )


class Machine:
    def __init__(self, name: str, core: str = "e500mc", smp: int = 1, **options: Any) -> None:
        self.elf = guest(name)
        self.sym = symbols(self.elf)
        self.vm = EmulatedBookeVm(core, smp=smp, **options)
        self.vm.load_elf(self.elf)
        self.core = core
        self.vcpu: EmulatedBookeVcpu = self.vm.emulated_vcpus[0]

    # -- registers ------------------------------------------------------------------------------

    def reg(self, name: str, *path: int, vcpu: int = 0) -> int:
        return L.field(REGS, name, *path).get(self.vm.vcpus[vcpu].get_regs())

    @property
    def pc(self) -> int:
        return self.reg("pc")

    def gpr(self, n: int) -> int:
        return self.reg("gpr", n)

    def set_regs(self, vcpu: int = 0, **values: int) -> None:
        """A full KVM_SET_REGS with some fields changed (as QEMU writes registers back)."""
        v = self.vm.vcpus[vcpu]
        buf = v.get_regs()
        for name, value in values.items():
            if name.startswith("r") and name[1:].isdigit():
                L.field(REGS, "gpr", int(name[1:])).put(buf, value)
            else:
                L.field(REGS, name).put(buf, value)
        v.set_regs(bytes(buf))

    def sreg(self, *path: str | int) -> int:
        return L.field(SREGS, "u", "e", *path).get(self.vcpu.get_sregs())

    # -- running --------------------------------------------------------------------------------

    def set_debug(self, control: int, bps: list[tuple[int, int]] | None = None) -> None:
        self.vcpu.set_guest_debug(guest_debug(control, bps))

    def run(self, vcpu: int = 0) -> Exit:
        v = self.vm.vcpus[vcpu]
        v.run()
        return read_exit(v.kvm_run)

    def run_to_done(self, vcpu: int = 0, limit: int = 50) -> int:
        """Run until the guest reports HOSTIO_DONE (checkpoints are resumed); its value."""
        for _ in range(limit):
            ex = self.run(vcpu)
            if ex.reason == KVM_EXIT_MMIO and ex.mmio_addr == HOSTIO_DONE:
                return ex.mmio_word
            if not (ex.reason == KVM_EXIT_MMIO and ex.mmio_addr == HOSTIO_CHECKPOINT):
                raise AssertionError(f"unexpected exit before done: {ex}")
        raise AssertionError("guest never reported done")

    def checkpoints(self, vcpu: int = 0, limit: int = 50) -> list[int]:
        """The values of all checkpoints up to HOSTIO_DONE."""
        out: list[int] = []
        for _ in range(limit):
            ex = self.run(vcpu)
            if ex.reason == KVM_EXIT_MMIO and ex.mmio_addr == HOSTIO_CHECKPOINT:
                out.append(ex.mmio_word)
                continue
            if ex.reason == KVM_EXIT_MMIO and ex.mmio_addr == HOSTIO_DONE:
                return out
            raise AssertionError(f"unexpected exit: {ex}")
        raise AssertionError("guest never reported done")

    def word(self, addr: int) -> int:
        return int.from_bytes(self.vm.read_phys(addr, 4), "big")

    def one_reg(self, reg_id: int) -> int:
        return self.vcpu.get_one_reg(reg_id)
