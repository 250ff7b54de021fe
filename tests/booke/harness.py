"""Driving a :class:`guestdbg.session.Session` over the emulated e500 hosts in the BookE tests.

The guests talk to the host through their host-I/O page (``hostio.inc``): a checkpoint store is
noted and the guest goes on, the "done" store stops the VM, as a VMM's device model would.
Everything else goes through the session's public methods or the KVM byte interface.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from emuhost.machine import Machine, read_exit

from guestdbg.events import ResumeAction, StopEvent, StopKind
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg.session.session import Session
from guestdbg_booke import abi
from guestdbg_booke.emuhost import HOSTIO_CHECKPOINT, HOSTIO_DONE

STOP_TIMEOUT = 10.0
GUEST_DEBUG_SIZE = 264
"""``struct kvm_guest_debug`` on ppc32: control, pad, bp[16] of {u64 addr, u32 type, u32 pad}
(docs/reference/kvm-debug-abi.md §2.1)."""
DEBUG_SPR_IDS = {
    "iac1": abi.KVM_REG_PPC_IAC1,
    "iac2": abi.KVM_REG_PPC_IAC2,
    "dac1": abi.KVM_REG_PPC_DAC1,
    "dac2": abi.KVM_REG_PPC_DAC2,
}


@dataclass
class HostIo:
    """The VMM's device model for the guests' host-I/O page (pass as ``exit_handler``)."""

    checkpoints: list[int] = field(default_factory=list)
    done: int | None = None

    def __call__(self, index: int, reason: int, run: memoryview) -> bool:
        if reason != KVM_EXIT_MMIO:
            return False
        ex = read_exit(run)
        if ex.mmio_addr == HOSTIO_CHECKPOINT:
            self.checkpoints.append(ex.mmio_word)
            return True
        if ex.mmio_addr == HOSTIO_DONE:
            self.done = ex.mmio_word
            return False
        return True


def run_to_stop(s: Session, vcpu: int = 0, step: bool = False) -> StopEvent:
    s.resume({vcpu: ResumeAction(step=step)})
    ev = s.wait_stop(STOP_TIMEOUT)
    if ev is None:
        s.interrupt()
        s.wait_stop(STOP_TIMEOUT)
        raise AssertionError(f"no stop within {STOP_TIMEOUT}s: the guest hung")
    return ev


def stop_of(ev: StopEvent) -> tuple[StopKind, int, int | None]:
    return ev.reason.kind, ev.reason.pc, ev.reason.address


def run_to_done(s: Session, io: HostIo, limit: int = 20) -> list[tuple[StopKind, int, int | None]]:
    """Resume until the guest's "done" store; the stops on the way (the HALT at done is last)."""
    stops = []
    for _ in range(limit):
        ev = run_to_stop(s)
        stops.append(stop_of(ev))
        if ev.reason.kind is StopKind.HALT:
            assert io.done is not None, f"halted before done: {stops}"
            return stops
    raise AssertionError(f"no done after {limit} stops: {stops}")


def debug_sprs(m: Machine, vcpu: int = 0) -> dict[str, int]:
    """IAC1/2 and DAC1/2 as KVM_GET_ONE_REG reports them (``vcpu->arch.dbg_reg``)."""
    v = m.vm.vcpus[vcpu]
    return {name: v.get_one_reg(reg_id) for name, reg_id in DEBUG_SPR_IDS.items()}


def guest_debug_bytes(control: int, bps: list[tuple[int, int]]) -> bytes:
    """The big-endian ``kvm_guest_debug`` built with ``struct`` from the offsets in
    docs/reference/kvm-debug-abi.md §2.1, independently of the cffi layout the plugin uses."""
    out = struct.pack(">I4x", control)
    for addr, typ in bps:
        out += struct.pack(">QI4x", addr, typ)
    return out + bytes(GUEST_DEBUG_SIZE - len(out))


def word(value: int) -> bytes:
    return value.to_bytes(4, "big")
