"""VMs and vCPUs over a real ``/dev/kvm``: the :mod:`guestdbg.vcpu` interface as ioctls.

Every structure and ioctl number comes from the :class:`~guestdbg.kvm.uapi.AbiLayout` the caller
passes in (the layout of the arch this machine is, e.g. from the x86 plugin), so this module
knows no arch. It refuses a layout of another arch or byte order: the kernel would read the
bytes in its own.

Where the arch and the kernel offer it (KVM_CAP_SYNC_REGS with ``ArchAbi.sync_regs_bit``), the
kernel copies ``struct kvm_regs`` into ``kvm_run`` at every exit, and :meth:`KvmVcpu.get_regs`
reads that copy instead of making a KVM_GET_REGS ioctl: the read a debugger makes at every stop
(the PC a step starts from, the registers GDB asks for) costs no ioctl. The copy is trusted
only from a KVM_RUN that exited normally until the next ioctl that sets state. The same goes for
what an arch declares in ``ArchAbi.sync_copies`` (x86: ``kvm_sregs`` and ``kvm_vcpu_events``), so
:meth:`KvmVcpu.get_sregs` and ``get_vcpu_events`` after an exit cost no ioctl either.

:meth:`KvmVcpu.set_regs_at_run` goes the other way: registers written into that copy with the
``kvm_dirty_regs`` bit, which the next KVM_RUN loads at its entry (``sync_regs``), instead of a
KVM_SET_REGS now. Until that run they are what :meth:`KvmVcpu.get_regs` returns on any thread,
and every other vCPU ioctl sends them with KVM_SET_REGS first, so no path sees older registers.

Kicking follows the VMM convention (QEMU's SIG_IPI): :meth:`KvmVcpu.kick` sets ``immediate_exit``
in ``kvm_run`` (seen by a KVM_RUN about to start) and sends the vCPU thread a signal whose handler
does nothing (seen by a KVM_RUN already running). Either way KVM_RUN returns ``-EINTR``, which
:meth:`KvmVcpu.run` reports as ``KVM_EXIT_INTR``. ``immediate_exit`` is cleared only when a run
returns ``KVM_EXIT_INTR``, so a kick that arrives just after a normal exit is not lost: the next
run returns at once.
"""

from __future__ import annotations

import errno as _errno
import os
import platform
import signal
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..errors import GuestDebugError, InvalidRequest, KernelError, NotStopped, UnsupportedByArch
from ..vcpu import SlotInfo
from . import constants, libc
from .memory import GuestMemory, MemorySlot
from .uapi import AbiLayout

if TYPE_CHECKING:
    from ..vcpu import VcpuHandle

DEFAULT_KICK_SIGNAL = signal.SIGUSR1
"""QEMU uses SIGUSR1 (SIG_IPI) for the same purpose."""

_MACHINE_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "ppc": "powerpc",
    "ppc64": "powerpc",
    "s390x": "s390",
    "riscv64": "riscv",
}
"""``uname -m`` -> the Linux arch name an ``ArchAbi.kvm_host_arch`` uses."""


def machine_kvm_arch() -> str:
    """The Linux arch of this machine's ``/dev/kvm`` (``x86_64``, ``powerpc``...)."""
    machine = platform.machine()
    return _MACHINE_ARCH.get(machine, machine)


class _ClosedOnExit:
    """``with`` closes it: file descriptors and mappings are released deterministically."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Kvm(_ClosedOnExit):
    """The ``/dev/kvm`` system fd: API version, extensions, VM creation."""

    def __init__(
        self,
        layout: AbiLayout,
        path: str = "/dev/kvm",
        kick_signal: int = DEFAULT_KICK_SIGNAL,
    ) -> None:
        host = machine_kvm_arch()
        if layout.arch.kvm_host_arch != host or layout.byteorder != sys.byteorder:
            raise UnsupportedByArch(
                f"a {layout.arch.kvm_host_arch} ({layout.byteorder}-endian) layout cannot drive "
                f"the /dev/kvm of this {host} ({sys.byteorder}-endian) machine"
            )
        libc.ensure_kick_handler(kick_signal)
        self.layout = layout
        self.kick_signal = kick_signal
        self._nr = layout.ioctls
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise KernelError(f"open({path})", e.errno or _errno.EIO) from None
        self._vms: list[KvmVm] = []
        try:
            self.api_version = self._ioctl("KVM_GET_API_VERSION", libc.NO_ARG)
            if self.api_version != constants.KVM_API_VERSION:
                raise UnsupportedByArch(
                    f"{path} speaks KVM API {self.api_version}; "
                    f"guestdbg needs {constants.KVM_API_VERSION}"
                )
            self.vcpu_mmap_size = self._ioctl("KVM_GET_VCPU_MMAP_SIZE", libc.NO_ARG)
        except GuestDebugError:
            os.close(self._fd)
            raise

    def _ioctl(self, name: str, arg: Any) -> int:
        if self._fd < 0:
            raise InvalidRequest("this Kvm is closed")
        return libc.ioctl(self._fd, self._nr[name], arg, name)

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION on the system fd (what the module offers any VM)."""
        return self._ioctl("KVM_CHECK_EXTENSION", libc.int_arg(cap))

    def create_vm(self, vm_type: int = 0) -> KvmVm:
        vm_fd = self._ioctl("KVM_CREATE_VM", libc.int_arg(vm_type))
        vm = KvmVm(self, vm_fd)
        self._vms.append(vm)
        return vm

    def close(self) -> None:
        """Close every VM made here (and their vCPUs), then the system fd. Refused, with
        nothing closed, while any vCPU is in KVM_RUN."""
        for vm in self._vms:
            vm.check_stopped()
        for vm in self._vms:
            vm.close()
        self._vms.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class KvmVm(_ClosedOnExit):
    """One VM fd: memory slots, capabilities, vCPUs. Implements :class:`guestdbg.vcpu.VmHandle`
    and :class:`guestdbg.vcpu.MemorySlotsHandle`."""

    def __init__(self, kvm: Kvm, fd: int) -> None:
        self._kvm = kvm
        self._fd = fd
        self._layout = kvm.layout
        self._nr = kvm.layout.ioctls
        self._memory = GuestMemory()
        self._vcpus: list[KvmVcpu] = []
        self._vcpu_class = KvmEventsVcpu if "KVM_GET_VCPU_EVENTS" in kvm.layout.ioctls else KvmVcpu

    @property
    def fd(self) -> int:
        return self._fd

    @property
    def layout(self) -> AbiLayout:
        return self._layout

    @property
    def vcpus(self) -> list[VcpuHandle]:
        return list(self._vcpus)

    @property
    def slots(self) -> tuple[MemorySlot, ...]:
        return self._memory.slots

    def _ioctl(self, name: str, arg: Any) -> int:
        if self._fd < 0:
            raise InvalidRequest("this VM is closed")
        return libc.ioctl(self._fd, self._nr[name], arg, name)

    def check_extension(self, cap: int) -> int:
        return self._ioctl("KVM_CHECK_EXTENSION", libc.int_arg(cap))

    def enable_cap(self, cap: int, *args: int) -> None:
        layout = self._layout
        if len(args) > 4 or any(not 0 <= a < 1 << 64 for a in args) or not 0 <= cap < 1 << 32:
            raise InvalidRequest(f"KVM_ENABLE_CAP takes a u32 cap and up to four u64 args: {args}")
        buf = layout.new("struct kvm_enable_cap")
        layout.field("struct kvm_enable_cap", "cap").put(buf, cap)
        for i, a in enumerate(args):
            layout.field("struct kvm_enable_cap", "args", i).put(buf, a)
        self._ioctl("KVM_ENABLE_CAP", libc.ffi.from_buffer(buf))

    def add_memory(self, gpa: int, size: int, flags: int = 0) -> MemorySlot:
        """Back ``[gpa, gpa+size)`` with fresh anonymous memory (KVM_SET_USER_MEMORY_REGION)."""
        if self._fd < 0:
            raise InvalidRequest("this VM is closed")
        slot = self._memory.map(gpa, size, flags)
        try:
            self._set_region(slot)
        except GuestDebugError:
            self._memory.discard(slot)
            raise
        self._memory.commit(slot)
        return slot

    def memory_slots(self) -> tuple[SlotInfo, ...]:
        """:class:`guestdbg.vcpu.MemorySlotsHandle`: the slot table, in guest-physical order."""
        return tuple(
            SlotInfo(s.slot, s.flags, s.gpa, s.size, s.userspace_addr) for s in self._memory.slots
        )

    def set_memory_slot(self, info: SlotInfo) -> None:
        """:class:`guestdbg.vcpu.MemorySlotsHandle`: KVM_SET_USER_MEMORY_REGION as given. A
        slot that is not deleted must lie inside one mapping :meth:`add_memory` made
        (InvalidRequest otherwise, before the kernel sees it: the kernel would accept any
        mapped memory, and guest RAM outside what this VM owns would outlive it or vanish
        under it); everything else is the kernel's to refuse, with its errno."""
        if self._fd < 0:
            raise InvalidRequest("this VM is closed")
        if info.size and self._memory.mapping_of(info.userspace_addr, info.size) is None:
            raise InvalidRequest(
                f"slot {info.slot}: {info.userspace_addr:#x}+{info.size:#x} is not inside one "
                "host mapping of this VM's guest RAM"
            )
        slot = MemorySlot(info.slot, info.gpa, info.size, info.flags, info.userspace_addr)
        self._set_region(slot)
        self._memory.commit(slot)

    def _set_region(self, slot: MemorySlot) -> None:
        ctype = "struct kvm_userspace_memory_region"
        buf = self._layout.new(ctype)
        f = self._layout.field
        f(ctype, "slot").put(buf, slot.slot)
        f(ctype, "flags").put(buf, slot.flags)
        f(ctype, "guest_phys_addr").put(buf, slot.gpa)
        f(ctype, "memory_size").put(buf, slot.size)
        f(ctype, "userspace_addr").put(buf, slot.userspace_addr)
        self._ioctl("KVM_SET_USER_MEMORY_REGION", libc.ffi.from_buffer(buf))

    def read_phys(self, gpa: int, size: int) -> bytes:
        return self._memory.read(gpa, size)

    def write_phys(self, gpa: int, data: bytes) -> None:
        self._memory.write(gpa, data)

    def create_vcpu(self, vcpu_id: int | None = None) -> KvmVcpu:
        """KVM_CREATE_VCPU, then map its ``kvm_run``; ids default to the next unused one."""
        if vcpu_id is None:
            used = {v.vcpu_id for v in self._vcpus}
            vcpu_id = next(n for n in range(len(used) + 1) if n not in used)
        fd = self._ioctl("KVM_CREATE_VCPU", libc.int_arg(vcpu_id))
        try:
            run = libc.mmap(self._kvm.vcpu_mmap_size, libc.MAP_SHARED, fd, "mmap(kvm_run)")
        except GuestDebugError:
            os.close(fd)
            raise
        vcpu = self._vcpu_class(self, vcpu_id, fd, run, self._kvm.vcpu_mmap_size)
        self._vcpus.append(vcpu)
        return vcpu

    def check_stopped(self) -> None:
        """Raise NotStopped if a thread is inside KVM_RUN on one of this VM's vCPUs."""
        running = [v.vcpu_id for v in self._vcpus if v.in_run]
        if running:
            raise NotStopped(f"vCPUs {running} are in KVM_RUN; kick them and wait first")

    def close(self) -> None:
        """Close the vCPUs, then the VM fd, then unmap guest RAM (nothing can reach it now).
        Refused, with nothing closed, while any vCPU is in KVM_RUN."""
        self.check_stopped()
        for vcpu in self._vcpus:
            vcpu.close()
        self._vcpus.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._memory.close()


class KvmVcpu:
    """One vCPU fd and its ``kvm_run``. Implements :class:`guestdbg.vcpu.VcpuHandle`."""

    def __init__(self, vm: KvmVm, vcpu_id: int, fd: int, run: Any, run_size: int) -> None:
        layout = vm.layout
        self._vm = vm
        self._layout = layout
        self._vcpu_id = vcpu_id
        self._fd = fd
        self._run_ptr = run
        self._run_size = run_size
        self._run = memoryview(libc.ffi.buffer(run, run_size))
        self._signal = vm._kvm.kick_signal
        self._nr = layout.ioctls
        self._nr_run = layout.ioctls["KVM_RUN"]
        self._exit_reason = layout.field("struct kvm_run", "exit_reason")
        self._immediate_exit = layout.field("struct kvm_run", "immediate_exit")
        self._sizes = {
            name: layout.sizeof(ctype)
            for name, ctype in (
                ("KVM_SET_GUEST_DEBUG", "struct kvm_guest_debug"),
                ("KVM_GET_REGS", "struct kvm_regs"),
                ("KVM_SET_REGS", "struct kvm_regs"),
                ("KVM_GET_SREGS", "struct kvm_sregs"),
                ("KVM_SET_SREGS", "struct kvm_sregs"),
                ("KVM_GET_VCPU_EVENTS", "struct kvm_vcpu_events"),
                ("KVM_SET_VCPU_EVENTS", "struct kvm_vcpu_events"),
                ("KVM_GET_DEBUGREGS", "struct kvm_debugregs"),
                ("KVM_SET_DEBUGREGS", "struct kvm_debugregs"),
            )
            if name in layout.ioctls
        }
        self._regs_copy: slice | None = None
        """Where ``kvm_run`` holds the kernel's copy of ``struct kvm_regs`` (KVM_CAP_SYNC_REGS)."""
        self._regs_copy_fresh = False
        """The copies are the vCPU's state: written at the last exit, no state set since."""
        self._copies: dict[str, slice] = {}
        """Getter ioctl -> where ``kvm_run`` holds the kernel's copy of what it returns."""
        self._regs_bit = 0
        self._deferred = False
        """Registers written into the ``kvm_run`` copy with the kernel's dirty bit set
        (:meth:`set_regs_at_run`): the next KVM_RUN loads them; every other ioctl flushes them
        first with KVM_SET_REGS, so nothing but that run's entry sees anything else."""
        self._deferred_regs = b""
        self._dirty_regs = layout.field("struct kvm_run", "kvm_dirty_regs")
        bit = layout.arch.sync_regs_bit
        offered = vm.check_extension(constants.KVM_CAP_SYNC_REGS) if bit else 0
        if offered & bit:
            start = layout.offsetof("struct kvm_run", "s")
            valid = bit
            self._regs_copy = slice(start, start + layout.sizeof("struct kvm_regs"))
            self._copies["KVM_GET_REGS"] = self._regs_copy
            self._regs_bit = bit
            at = self._regs_copy.stop
            for name, copy_bit, ctype in layout.arch.sync_copies:
                size = layout.sizeof(ctype)
                if offered & copy_bit and name in layout.ioctls:
                    valid |= copy_bit
                    self._copies[name] = slice(at, at + size)
                at += size
            layout.field("struct kvm_run", "kvm_valid_regs").put(self._run, valid)
        self._run_mutex = threading.Lock()
        """Held for a whole KVM_RUN: a second one waits, as on ``vcpu->mutex`` in the kernel."""
        self._lock = threading.Lock()
        self._thread: int | None = None
        """pthread id of the thread inside KVM_RUN; guarded by ``_lock`` so a kick never
        signals a thread that has left (pthread_kill on a finished thread is undefined)."""

    @property
    def vcpu_id(self) -> int:
        return self._vcpu_id

    @property
    def fd(self) -> int:
        return self._fd

    @property
    def kvm_run(self) -> memoryview:
        return self._run

    @property
    def in_run(self) -> bool:
        """A thread is inside :meth:`run` (so state ioctls would wait for it)."""
        return self._thread is not None

    # -- running ---------------------------------------------------------------------------

    def run(self) -> int:
        with self._run_mutex:
            if self._fd < 0:
                raise InvalidRequest(f"vCPU {self._vcpu_id} is closed")
            with self._lock:
                self._thread = libc.current_thread_id()
                self._regs_copy_fresh = False
                pending = self._deferred_regs if self._deferred else None
                self._deferred = False  # this run's entry loads them; nobody flushes them now
            try:
                rc = libc.lib.ioctl(self._fd, self._nr_run, libc.NO_ARG)
                err = libc.ffi.errno if rc < 0 else 0
            finally:
                with self._lock:
                    self._thread = None
                if pending is not None and self._dirty_regs.get(self._run) & self._regs_bit:
                    self._not_loaded(pending)
            if rc >= 0:
                self._regs_copy_fresh = self._regs_copy is not None
            else:
                if err != _errno.EINTR:
                    raise KernelError("KVM_RUN", err)
                # kvm_arch_vcpu_ioctl_run: immediate_exit fails -EINTR before exit_reason is set
                self._immediate_exit.put(self._run, 0)
                self._exit_reason.put(self._run, constants.KVM_EXIT_INTR)
                return constants.KVM_EXIT_INTR
            return self._exit_reason.get(self._run)

    def kick(self) -> None:
        if self._fd < 0:
            return
        self._immediate_exit.put(self._run, 1)
        with self._lock:
            if self._thread is not None:
                libc.signal_thread(self._thread, self._signal)

    # -- state -----------------------------------------------------------------------------

    def _ioctl(self, name: str, arg: Any) -> int:
        if self._fd < 0:
            raise InvalidRequest(f"vCPU {self._vcpu_id} is closed")
        if self._deferred:
            self._flush_deferred(name)
        return libc.ioctl(self._fd, self._nr[name], arg, name)

    def _flush_deferred(self, name: str) -> None:
        """Before any other ioctl: the deferred registers go to the kernel now (a KVM_SET_REGS
        replaces them anyway), so no ioctl - and no other thread's - sees older ones."""
        with self._lock:
            if not self._deferred:
                return
            self._deferred = False
            self._drop_dirty_bit()
            regs = self._deferred_regs
        if name != "KVM_SET_REGS":
            self._send_regs(regs)

    def _not_loaded(self, regs: bytes) -> None:
        """KVM_RUN failed before its entry loaded the deferred registers (its exit copy may
        have overwritten them in ``kvm_run``): send them with KVM_SET_REGS now."""
        self._drop_dirty_bit()
        self._send_regs(regs)

    def _drop_dirty_bit(self) -> None:
        """The next KVM_RUN's entry must not load ``kvm_run``'s register copy: the registers
        deferred there go (or went) to the kernel by KVM_SET_REGS instead."""
        self._dirty_regs.put(self._run, self._dirty_regs.get(self._run) & ~self._regs_bit)

    def _send_regs(self, regs: bytes) -> None:
        buf = bytearray(regs)
        libc.ioctl(self._fd, self._nr["KVM_SET_REGS"], libc.ffi.from_buffer(buf), "KVM_SET_REGS")

    def _get(self, name: str) -> bytearray:
        if self._regs_copy_fresh or self._deferred:
            copy = self._copies.get(name)
            if copy is not None:
                with self._lock:  # a run starting on another thread makes the copy stale
                    if self._regs_copy_fresh:
                        return bytearray(self._run[copy])
                    if self._deferred and copy == self._regs_copy:
                        return bytearray(self._deferred_regs)
        if name not in self._sizes:
            raise UnsupportedByArch(f"{name} does not exist on {self._layout.arch.kvm_host_arch}")
        buf = bytearray(self._sizes[name])
        self._ioctl(name, libc.ffi.from_buffer(buf))
        return buf

    def _set(self, name: str, data: bytes | bytearray) -> None:
        if name not in self._sizes:
            raise UnsupportedByArch(f"{name} does not exist on {self._layout.arch.kvm_host_arch}")
        if len(data) != self._sizes[name]:
            raise InvalidRequest(f"{name} takes {self._sizes[name]} bytes, got {len(data)}")
        self._regs_copy_fresh = False  # whatever it sets, the next get_regs asks the kernel
        self._ioctl(name, libc.ffi.from_buffer(data))

    def set_guest_debug(self, dbg: bytes) -> None:
        self._set("KVM_SET_GUEST_DEBUG", dbg)

    def get_regs(self) -> bytearray:
        return self._get("KVM_GET_REGS")

    def set_regs(self, regs: bytes) -> None:
        self._set("KVM_SET_REGS", regs)

    def set_regs_at_run(self, regs: bytes) -> None:
        """Registers for the next KVM_RUN, written into ``kvm_run``'s copy with the kernel's
        dirty bit (KVM_CAP_SYNC_REGS; ``sync_regs`` loads them at that run's entry as KVM_SET_REGS
        would) instead of an ioctl now: for a register write on the vCPU's own thread right
        before it runs again (a false-condition hit carried out in place). Until then
        :meth:`get_regs` reads them from the copy, on any thread, and any other ioctl first
        sends them with KVM_SET_REGS. Without the copy, or while a KVM_RUN is in progress, it is
        :meth:`set_regs`."""
        copy = self._regs_copy
        if copy is None or len(regs) != copy.stop - copy.start:
            self.set_regs(regs)
            return
        with self._lock:
            deferred = self._thread is None and self._fd >= 0
            if deferred:
                self._deferred_regs = regs if type(regs) is bytes else bytes(regs)
                self._run[copy] = regs
                self._dirty_regs.put(self._run, self._dirty_regs.get(self._run) | self._regs_bit)
                self._deferred = True
                self._regs_copy_fresh = False  # the other copies: ask the kernel (after a flush)
        if not deferred:
            self.set_regs(regs)

    def get_sregs(self) -> bytearray:
        return self._get("KVM_GET_SREGS")

    def set_sregs(self, sregs: bytes) -> None:
        self._set("KVM_SET_SREGS", sregs)

    def get_debugregs(self) -> bytearray:
        """KVM_GET_DEBUGREGS (x86): the guest's own DR0-3, DR6, DR7."""
        return self._get("KVM_GET_DEBUGREGS")

    def set_debugregs(self, regs: bytes) -> None:
        self._set("KVM_SET_DEBUGREGS", regs)

    def get_one_reg(self, reg_id: int) -> int:
        value = bytearray(constants.one_reg_size(reg_id))
        self._one_reg("KVM_GET_ONE_REG", reg_id, value)
        return int.from_bytes(value, self._layout.byteorder)

    def set_one_reg(self, reg_id: int, value: int) -> None:
        size = constants.one_reg_size(reg_id)
        if not 0 <= value < 1 << (8 * size):
            raise InvalidRequest(f"{value:#x} does not fit the {size}-byte register {reg_id:#x}")
        self._one_reg(
            "KVM_SET_ONE_REG", reg_id, bytearray(value.to_bytes(size, self._layout.byteorder))
        )

    def _one_reg(self, name: str, reg_id: int, value: bytearray) -> None:
        if not 0 <= reg_id < 1 << 64:
            raise InvalidRequest(f"ONE_REG ids are u64, got {reg_id:#x}")
        if name == "KVM_SET_ONE_REG":
            self._regs_copy_fresh = False
        layout = self._layout
        buf = layout.new("struct kvm_one_reg")
        target = libc.ffi.from_buffer(value)  # kept alive across the ioctl
        layout.field("struct kvm_one_reg", "id").put(buf, reg_id)
        layout.field("struct kvm_one_reg", "addr").put(buf, int(libc.ffi.cast("uintptr_t", target)))
        self._ioctl(name, libc.ffi.from_buffer(buf))

    def translate(self, gva: int) -> int | None:
        if not 0 <= gva < 1 << 64:
            raise InvalidRequest(f"{gva:#x} is not a 64-bit address")
        layout = self._layout
        ctype = "struct kvm_translation"
        buf = layout.new(ctype)
        layout.field(ctype, "linear_address").put(buf, gva)
        self._ioctl("KVM_TRANSLATE", libc.ffi.from_buffer(buf))
        if not layout.field(ctype, "valid").get(buf):
            return None
        return layout.field(ctype, "physical_address").get(buf)

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the vCPU fd and retire ``kvm_run`` (views kept of it then read zeros)."""
        if self._fd < 0:
            return
        with self._lock:
            if self._thread is not None:
                raise NotStopped(f"vCPU {self._vcpu_id} is in KVM_RUN; kick it and wait first")
            self._regs_copy_fresh = False
            libc.make_inert(self._run_ptr, self._run_size)
            os.close(self._fd)
            self._fd = -1


class KvmEventsVcpu(KvmVcpu):
    """A vCPU of an arch with KVM_GET/SET_VCPU_EVENTS (x86, arm64): also a
    :class:`guestdbg.vcpu.VcpuEventsHandle`."""

    def get_vcpu_events(self) -> bytearray:
        return self._get("KVM_GET_VCPU_EVENTS")

    def set_vcpu_events(self, events: bytes) -> None:
        self._set("KVM_SET_VCPU_EVENTS", events)


def unusable_reason(layout: AbiLayout, path: str = "/dev/kvm") -> str | None:
    """Why this machine's ``/dev/kvm`` cannot run a VM for ``layout``, or None when it can.

    Opens the device and creates (and drops) one VM, because a present device can still refuse
    (no permission, KVM disabled, a nested host without VMX/SVM)."""
    if not os.path.exists(path):
        return f"{path} does not exist"
    try:
        with Kvm(layout, path) as kvm:
            kvm.create_vm().close()
    except GuestDebugError as e:
        return f"{path} is unusable: {e}"
    return None
