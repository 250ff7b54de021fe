"""A VMM's own VM adapter: guestdbg's ``VmHandle``/``VcpuHandle`` over raw x86-64 KVM ioctls.

Run it::

    python examples/raw_kvm_adapter.py --selftest   # a Session on it: hbreak, continue, stepi

A VMM that already talks to ``/dev/kvm`` itself (QEMU, Firecracker, crosvm, your own) does not
need :mod:`guestdbg.kvm.device`: it hands guestdbg its own VM and vCPU objects. This module is
such an adapter (the two classes below), with nothing but ``os.open``, ``fcntl.ioctl``, ``mmap``,
``signal`` and ``ctypes`` (for the addresses of buffers the kernel reads). The structure sizes,
field offsets and ioctl numbers come from the x86 plugin's :class:`~guestdbg.kvm.uapi.AbiLayout`,
as a VMM's come from its ``<linux/kvm.h>``; errors are guestdbg's (``KernelError`` naming the
ioctl and errno, ``BadAddress`` outside guest RAM), because that is what the protocol promises.

The parts that matter for a debugger:

* **The kick** is QEMU's SIG_IPI: ``immediate_exit`` in ``kvm_run`` (for a thread about to
  enter KVM_RUN) plus a signal with a do-nothing handler to the thread inside it (which makes
  KVM_RUN return ``-EINTR``). Both happen under one lock with the record of which thread is in
  KVM_RUN, so the signal never goes to a thread that has left. A run that returns ``-EINTR``
  reports KVM_EXIT_INTR and clears ``immediate_exit``; a kick that lands after a run returned
  for another reason stays set for the next run.
* **One KVM_RUN at a time** per vCPU: a second one waits on the adapter's lock (so the kick
  knows the one thread to signal); every other ioctl waits in the kernel on ``vcpu->mutex``.
* **KVM_GET/SET_VCPU_EVENTS** (:class:`guestdbg.vcpu.VcpuEventsHandle`): the x86 plugin hands the
  guest's own #BP and #DB back through it and refuses a session without it. KVM_GET/SET_DEBUGREGS
  (:class:`~guestdbg.vcpu.DebugRegsHandle`) is left out: the guest's own debug registers are then
  not saved and restored around a debug session.
* **``fd``** on the VM: guestdbg recognises a real KVM VM by it (``/proc/self/fd`` reads
  ``anon_inode:kvm-vm``) and probes what this kernel delivers before accepting points.

:func:`adapter_profile` is what ``tests/conformance/test_raw_adapter_conformance.py`` hands the
adapter conformance kit (:class:`guestdbg.testing.AdapterConformance`).

Exit status: 0 when every check passed; 1 with one line saying what failed; 77 when this
machine cannot run it (no usable /dev/kvm, not x86-64, no gcc/ld).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import pathlib
import signal
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from vmm_debug_loop import ExampleFailed

from guestdbg.errors import BadAddress, GuestDebugError, InvalidRequest, KernelError
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm.constants import KVM_EXIT_INTR
from guestdbg.kvm.device import machine_kvm_arch, unusable_reason
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.plugins import default_registry
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg.vcpu import VcpuHandle
from guestdbg_x86 import boot
from guestdbg_x86.guests.build import build

if TYPE_CHECKING:
    from guestdbg.testing import AdapterProfile

HERE = pathlib.Path(__file__).resolve().parent
GUEST_SOURCE = HERE / "guests" / "x86_count.S"
RAM_SIZE = 4 << 20
OUTSIDE_RAM = 0x10000000
KICK_SIGNAL = signal.SIGUSR1
EXIT_SKIPPED = 77
STOP_TIMEOUT = 10.0


def _ignore(signum: int, frame: object) -> None:
    """The kick signal's handler: its only job is to make a blocked KVM_RUN return EINTR."""


def _ioctl(fd: int, layout: AbiLayout, name: str, arg: int | bytearray = 0) -> int:
    """``ioctl(fd, name, arg)``; a bytearray is passed by address and filled in place."""
    try:
        return fcntl.ioctl(fd, layout.ioctls[name], arg, True)
    except OSError as e:
        raise KernelError(name, e.errno or errno.EIO) from None


def _address(buf: Any) -> int:
    """The address of a writable buffer (a bytearray, an mmap), for a field the kernel reads."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


class RawVcpu:
    """One vCPU fd and its ``kvm_run``: implements VcpuHandle and VcpuEventsHandle."""

    def __init__(self, vm: RawVm, vcpu_id: int) -> None:
        self.layout = layout = vm.layout
        self._vcpu_id = vcpu_id
        self.fd = _ioctl(vm.fd, layout, "KVM_CREATE_VCPU", vcpu_id)
        size = _ioctl(vm.kvm_fd, layout, "KVM_GET_VCPU_MMAP_SIZE")
        self._run_map = mmap.mmap(self.fd, size, mmap.MAP_SHARED)
        self._run = memoryview(self._run_map)
        self._exit_reason = layout.field("struct kvm_run", "exit_reason")
        self._immediate_exit = layout.field("struct kvm_run", "immediate_exit")
        self._one_run = threading.Lock()  # one KVM_RUN at a time: the kick signals its thread
        self._lock = threading.Lock()  # guards _thread against a kick
        self._thread: int | None = None

    @property
    def vcpu_id(self) -> int:
        return self._vcpu_id

    @property
    def kvm_run(self) -> memoryview:
        return self._run

    def run(self) -> int:
        with self._one_run:
            with self._lock:
                self._thread = threading.get_ident()
            try:
                fcntl.ioctl(self.fd, self.layout.ioctls["KVM_RUN"], 0)
                interrupted = False
            except OSError as e:
                if e.errno != errno.EINTR:
                    raise KernelError("KVM_RUN", e.errno or errno.EIO) from None
                interrupted = True
            finally:
                with self._lock:
                    self._thread = None
            if interrupted:  # -EINTR comes before the kernel writes exit_reason
                self._immediate_exit.put(self._run, 0)
                self._exit_reason.put(self._run, KVM_EXIT_INTR)
            return self._exit_reason.get(self._run)

    def kick(self) -> None:
        with self._lock:
            self._immediate_exit.put(self._run, 1)
            if self._thread is not None:
                signal.pthread_kill(self._thread, KICK_SIGNAL)

    def _get(self, name: str, ctype: str) -> bytearray:
        buf = self.layout.new(ctype)
        _ioctl(self.fd, self.layout, name, buf)
        return buf

    def _set(self, name: str, ctype: str, data: bytes) -> None:
        size = self.layout.sizeof(ctype)
        if len(data) != size:
            raise InvalidRequest(f"{name} takes {size} bytes, got {len(data)}")
        _ioctl(self.fd, self.layout, name, bytearray(data))

    def set_guest_debug(self, dbg: bytes) -> None:
        self._set("KVM_SET_GUEST_DEBUG", "struct kvm_guest_debug", dbg)

    def get_regs(self) -> bytearray:
        return self._get("KVM_GET_REGS", "struct kvm_regs")

    def set_regs(self, regs: bytes) -> None:
        self._set("KVM_SET_REGS", "struct kvm_regs", regs)

    def get_sregs(self) -> bytearray:
        return self._get("KVM_GET_SREGS", "struct kvm_sregs")

    def set_sregs(self, sregs: bytes) -> None:
        self._set("KVM_SET_SREGS", "struct kvm_sregs", sregs)

    def get_vcpu_events(self) -> bytearray:
        return self._get("KVM_GET_VCPU_EVENTS", "struct kvm_vcpu_events")

    def set_vcpu_events(self, events: bytes) -> None:
        self._set("KVM_SET_VCPU_EVENTS", "struct kvm_vcpu_events", events)

    def _one_reg(self, name: str, reg_id: int, value: bytearray) -> None:
        arg = self.layout.new("struct kvm_one_reg")
        self.layout.field("struct kvm_one_reg", "id").put(arg, reg_id)
        self.layout.field("struct kvm_one_reg", "addr").put(arg, _address(value))
        _ioctl(self.fd, self.layout, name, arg)

    def get_one_reg(self, reg_id: int) -> int:
        value = bytearray(1 << ((reg_id >> 52) & 0xF))  # KVM_REG_SIZE
        self._one_reg("KVM_GET_ONE_REG", reg_id, value)
        return int.from_bytes(value, "little")

    def set_one_reg(self, reg_id: int, value: int) -> None:
        self._one_reg(
            "KVM_SET_ONE_REG",
            reg_id,
            bytearray(value.to_bytes(1 << ((reg_id >> 52) & 0xF), "little")),
        )

    def translate(self, gva: int) -> int | None:
        ctype = "struct kvm_translation"
        tr = self.layout.new(ctype)
        self.layout.field(ctype, "linear_address").put(tr, gva)
        _ioctl(self.fd, self.layout, "KVM_TRANSLATE", tr)
        if not self.layout.field(ctype, "valid").get(tr):
            return None
        return self.layout.field(ctype, "physical_address").get(tr)

    def close(self) -> None:
        os.close(self.fd)
        self._run.release()
        with contextlib.suppress(BufferError):  # a view still held: unmapped once dropped
            self._run_map.close()


class RawVm:
    """One VM fd with one RAM slot at guest-physical 0: implements VmHandle."""

    def __init__(self, layout: AbiLayout, ram_size: int, vcpus: int = 1) -> None:
        if signal.getsignal(KICK_SIGNAL) in (signal.SIG_DFL, signal.SIG_IGN):
            signal.signal(KICK_SIGNAL, _ignore)  # main thread only; an ignored signal is lost
        self._layout = layout
        self.kvm_fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        self.fd = _ioctl(self.kvm_fd, layout, "KVM_CREATE_VM")
        self.ram_size = ram_size
        self.ram = mmap.mmap(-1, ram_size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        ctype = "struct kvm_userspace_memory_region"
        region = layout.new(ctype)
        for field, value in (
            ("slot", 0),
            ("guest_phys_addr", 0),
            ("memory_size", ram_size),
            ("userspace_addr", _address(self.ram)),
        ):
            layout.field(ctype, field).put(region, value)
        _ioctl(self.fd, layout, "KVM_SET_USER_MEMORY_REGION", region)
        self._vcpus = [RawVcpu(self, n) for n in range(vcpus)]

    @property
    def layout(self) -> AbiLayout:
        return self._layout

    @property
    def vcpus(self) -> list[VcpuHandle]:
        return list(self._vcpus)

    def check_extension(self, cap: int) -> int:
        return _ioctl(self.fd, self._layout, "KVM_CHECK_EXTENSION", cap)

    def enable_cap(self, cap: int, *args: int) -> None:
        ctype = "struct kvm_enable_cap"
        arg = self._layout.new(ctype)
        self._layout.field(ctype, "cap").put(arg, cap)
        for n, value in enumerate(args):
            self._layout.field(ctype, "args", n).put(arg, value)
        _ioctl(self.fd, self._layout, "KVM_ENABLE_CAP", arg)

    def _check(self, gpa: int, size: int) -> None:
        if gpa < 0 or size < 0 or gpa + size > self.ram_size:
            raise BadAddress(f"guest-physical {gpa:#x}+{size:#x} is not all guest RAM")

    def read_phys(self, gpa: int, size: int) -> bytes:
        self._check(gpa, size)
        return self.ram[gpa : gpa + size]

    def write_phys(self, gpa: int, data: bytes) -> None:
        self._check(gpa, len(data))
        self.ram[gpa : gpa + len(data)] = data

    def close(self) -> None:
        for vcpu in self._vcpus:
            vcpu.close()
        os.close(self.fd)
        os.close(self.kvm_fd)
        self.ram.close()


# -- using it -----------------------------------------------------------------------------


def x86_layout() -> AbiLayout:
    return default_registry().arches["x86"].layout()


def why_not_here() -> str | None:
    if machine_kvm_arch() != "x86_64":
        return f"needs an x86-64 /dev/kvm; this machine is {machine_kvm_arch()}"
    return unusable_reason(x86_layout())


def new_vm(elf: pathlib.Path, vcpus: int = 1) -> RawVm:
    """A raw VM with the guest booted in long mode at CPL0 (guestdbg_x86.boot, which needs
    nothing but the VmHandle interface)."""
    vm = RawVm(x86_layout(), RAM_SIZE, vcpus)
    try:
        boot.boot(vm, boot.read_image(elf), RAM_SIZE)
    except BaseException:
        vm.close()
        raise
    return vm


def guest_elf() -> pathlib.Path:
    return build(GUEST_SOURCE, pathlib.Path(tempfile.gettempdir()) / "guestdbg-examples")


def adapter_profile() -> AdapterProfile:
    """What the adapter conformance kit needs of this adapter (a VMM writes one of these)."""
    from guestdbg.testing import AdapterProfile, AdapterUnavailable

    reason = why_not_here()
    if reason is not None:
        raise AdapterUnavailable(reason)
    elf = guest_elf()
    return AdapterProfile(
        make_vm=lambda: new_vm(elf, vcpus=2),
        pc_field="rip",
        scratch=(RAM_SIZE - 4096, 4096),  # the last page of RAM; the guest uses its first 80 KiB
        outside_ram=OUTSIDE_RAM,  # above RAM; the boot tables map only RAM
        release=lambda vm: vm.close() if isinstance(vm, RawVm) else None,
        arch="x86",
    )


def selftest() -> None:
    """A Session over the raw adapter, without GDB: hbreak, continue, stepi, read the counter."""
    elf = guest_elf()
    sym = boot.read_image(elf).symbols
    vm = new_vm(elf)
    session = Session(vm, "x86")  # attaches: the VM is stopped
    try:
        session.insert_point(DebugPoint(PointKind.HW_BREAK, sym["store"], 1))
        for _ in range(2):
            stop = wait(session, ResumeAction())
            print(f"hbreak *store, continue: {stop.reason.kind.value} @{stop.reason.pc:#x}")
            check(stop.reason.kind is StopKind.HW_BREAK and stop.reason.pc == sym["store"], stop)
        stop = wait(session, ResumeAction(step=True))
        print(f"stepi: {stop.reason.kind.value} @{stop.reason.pc:#x}")
        check(stop.reason.kind is StopKind.STEP and stop.reason.pc == sym["count"], stop)
        counter = int.from_bytes(session.read_memory(0, sym["counts"], 8), "little")
        print(f"counts = {counter}")
        check(counter == 2, counter)
        session.detach()  # the guest runs on, undebugged
    finally:
        session.close()
        vm.close()


def wait(session: Session, action: ResumeAction) -> Any:
    session.resume({0: action})
    stop = session.wait_stop(STOP_TIMEOUT)
    check(stop is not None, f"no stop within {STOP_TIMEOUT}s")
    return stop


def check(ok: bool, what: object) -> None:
    if not ok:
        raise ExampleFailed(f"unexpected: {what}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--selftest", action="store_true", help="debug the guest through a Session")
    args = p.parse_args(argv)
    reason = why_not_here()
    if reason is not None:
        print(f"SKIPPED: {reason}")
        return EXIT_SKIPPED
    if not args.selftest:
        print("nothing to do: run with --selftest, or hand adapter_profile() to the kit")
        return 0
    try:
        selftest()
    except GuestDebugError as e:
        print(f"FAILED: {e}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
