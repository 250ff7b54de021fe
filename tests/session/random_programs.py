"""Random e500mc programs from the fidelity generator, built, and their undebugged results: what
the host-step property tests (Session API here, real GDB in ``tests/e2e``) compare against."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from guestdbg.kvm.constants import KVM_EXIT_MMIO, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP
from guestdbg.plugins import default_registry
from guestdbg_booke import abi, regs
from guestdbg_booke.emuhost import HOSTIO_DONE
from guestdbg_booke.fidelity.generator import Layout, generate
from guestdbg_booke.fidelity.mix import DATA_SIZE

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "guests" / "build" / "random"
LENGTH = 40
L = abi.layout()
GD = "struct kvm_guest_debug"


def guest_debug(control: int) -> bytes:
    buf = bytearray(L.sizeof(GD))
    L.field(GD, "control").put(buf, control)
    return bytes(buf)


EXIT_REASON = L.field("struct kvm_run", "exit_reason")
MMIO_ADDR = L.field("struct kvm_run", "mmio", "phys_addr")


@dataclass(frozen=True)
class Built:
    seed: int
    vcpus: int
    elf: Path
    layout: Layout


@functools.cache
def built(seed: int, vcpus: int) -> Built:
    program = generate(seed, length=LENGTH, vcpus=vcpus)
    elf = program.build(BUILD)
    return Built(seed, vcpus, elf, program.layout(elf))


def finished(run: memoryview) -> bool:
    return EXIT_REASON.get(run) == KVM_EXIT_MMIO and MMIO_ADDR.get(run) == HOSTIO_DONE


def new_vm(b: Built) -> object:
    return default_registry().emulated_host("e500mc").create_vm(str(b.elf), smp=b.vcpus)


def image(vm: object, lay: Layout) -> tuple[bytes, bytes]:
    read = vm.read_phys  # type: ignore[attr-defined]
    lo, hi = lay.data
    return read(lay.text[0], lay.text[1] - lay.text[0]), read(lo, hi - lo)


@functools.cache
def undebugged(seed: int, vcpus: int) -> tuple[bytes, bytes]:
    """Code and data of the program run to its end on every vCPU, no debugger anywhere."""
    b = built(seed, vcpus)
    vm = new_vm(b)
    for v in vm.vcpus:  # type: ignore[attr-defined]
        for _ in range(10_000):
            v.run()
            if finished(v.kvm_run):
                break
        else:
            raise AssertionError(f"seed {seed}: vCPU {v.vcpu_id} never finished undebugged")
    return image(vm, b.layout)


def differences(lay: Layout, alone: bytes, debugged: bytes) -> list[str]:
    """Data words that differ, but for the one difference the kernel makes: while the host
    debugs, BookE-HV KVM forces MSR[DE] into the MSR the guest sees (``kvmppc_vcpu_sync_debug``,
    docs/fidelity.md ``booke-hv-msr-gs-de``), so the SRR1 a handler logs then has DE set."""
    out = []
    for i in range(0, len(alone), 4):
        a = int.from_bytes(alone[i : i + 4], "big")
        d = int.from_bytes(debugged[i : i + 4], "big")
        addr = lay.data[0] + i
        if a == d or (lay.log_field(addr) == "srr1" and d == a | regs.MSR_DE):
            continue
        out.append(f"{addr:#x} {lay.log_field(addr) or 'data'}: {d:#x}, alone {a:#x}")
    return out


@functools.cache
def executed(seed: int, vcpus: int) -> tuple[int, ...]:
    """Body addresses vCPU 0 executes, undebugged, in order of first execution: where a
    schedule's breakpoints and steps have something to do (a random body skips some code)."""
    b = built(seed, vcpus)
    vm = new_vm(b)
    v = vm.vcpus[0]  # type: ignore[attr-defined]
    v.set_guest_debug(guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP))
    v.set_regs(v.get_regs())  # kvmppc_set_msr forces MSR[DE] for the host (sync_debug)
    seen: dict[int, None] = {}
    for _ in range(20_000):
        v.run()
        if finished(v.kvm_run):
            return tuple(seen)
        pc = L.field("struct kvm_regs", "pc").get(v.get_regs())
        if pc in b.layout.kinds:
            seen.setdefault(pc)
    raise AssertionError(f"seed {seed}: never finished when stepped")


def data_words(lay: Layout) -> list[int]:
    """The words the random loads and stores use, and the handlers' counters, per vCPU."""
    return [
        a for v in range(lay.vcpus) for a in range(lay.area(v), lay.area(v) + DATA_SIZE + 16, 4)
    ]
