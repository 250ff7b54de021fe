"""What a ``/dev/kvm`` vCPU fd does around any arch's kernel: the vCPU mutex, KVM_RUN's entry
and exit, kicks, and the sizes of the structures its ioctls copy.

An emulated host's vCPU subclasses :class:`EmulatedVcpu` and supplies only its model of the
kernel (``_enter``: the arch's KVM_RUN loop; ``_get_regs``... the arch's ioctls) and its
engine. The semantics here are the kernel's, so that the same VMM code behaves the same on both:

* **One ioctl at a time.** ``kvm_vcpu_ioctl`` (``virt/kvm/kvm_main.c``) takes ``vcpu->mutex``
  (``mutex_lock_killable``) around every vCPU ioctl, KVM_RUN included. An ioctl from another
  thread while KVM_RUN runs therefore *waits* until KVM_RUN returns, and so does a second
  KVM_RUN (the kernel then records the new thread as the vCPU's, ``kvm_arch_vcpu_run_pid_change``).
  Here :attr:`mutex` plays ``vcpu->mutex``; every ioctl method holds it.
* **A kick is a signal.** The VMM convention (QEMU's SIG_IPI, :mod:`guestdbg.kvm.device`) is
  to set ``kvm_run->immediate_exit`` (seen by a KVM_RUN about to start: the arch's
  ``kvm_arch_vcpu_ioctl_run`` returns -EINTR before entering the guest) and to signal the vCPU
  thread (seen by a KVM_RUN already running: ``signal_pending`` before the next guest entry
  ends it with ``exit_reason`` = KVM_EXIT_INTR, and wakes a halted vCPU from
  ``kvm_vcpu_block``). :meth:`kick` does both: it sets ``immediate_exit`` and, when a thread is
  in KVM_RUN, raises the pending "signal" the arch's loop polls with :meth:`_signal_pending`
  between two instructions (never inside one: the engines stop only between count-limited
  slices, see :mod:`guestdbg.emuhost.unicorn`). A run that ends with KVM_EXIT_INTR clears
  ``immediate_exit`` (as ``KvmVcpu.run`` does after -EINTR), so a kick is consumed by exactly
  one run; a kick that lands just after a run returned for another reason leaves
  ``immediate_exit`` set, and the next KVM_RUN returns KVM_EXIT_INTR at once.
* **Translations dropped between instructions.** When the VMM writes guest memory, each vCPU
  drops its engine's translated code of that range: at once when no thread is inside one of its
  ioctls, otherwise at the running thread's next poll (the engine belongs to the thread that
  holds the mutex).
* **Structures of the wrong size** are refused with InvalidRequest before the model sees them,
  as :class:`~guestdbg.kvm.device.KvmVcpu` refuses them before the kernel does.
"""

from __future__ import annotations

import errno
import threading

from ..errors import InvalidRequest, KernelError, UnsupportedByArch
from ..kvm import constants as C
from ..kvm.uapi import AbiLayout
from .run_area import RunArea

VCPU_IOCTL_STRUCTS = {
    "KVM_SET_GUEST_DEBUG": "struct kvm_guest_debug",
    "KVM_GET_REGS": "struct kvm_regs",
    "KVM_SET_REGS": "struct kvm_regs",
    "KVM_GET_SREGS": "struct kvm_sregs",
    "KVM_SET_SREGS": "struct kvm_sregs",
    "KVM_GET_VCPU_EVENTS": "struct kvm_vcpu_events",
    "KVM_SET_VCPU_EVENTS": "struct kvm_vcpu_events",
    "KVM_GET_DEBUGREGS": "struct kvm_debugregs",
    "KVM_SET_DEBUGREGS": "struct kvm_debugregs",
}
"""The vCPU ioctls that copy one fixed structure, and the structure."""


class EmulatedVcpu:
    """The vCPU-fd half of an emulated host's vCPU (implements most of
    :class:`guestdbg.vcpu.VcpuHandle`; the subclass adds its arch's model)."""

    def __init__(self, vcpu_id: int, layout: AbiLayout, run_area: RunArea) -> None:
        self._vcpu_id = vcpu_id
        self._layout = layout
        self.run_area = run_area
        self.mutex = threading.RLock()
        """``vcpu->mutex``: held by every ioctl, KVM_RUN for its whole duration."""
        self._sizes = {
            name: layout.sizeof(ctype)
            for name, ctype in VCPU_IOCTL_STRUCTS.items()
            if name in layout.ioctls
        }
        self._signal_lock = threading.Lock()
        self._running = False
        self._signal = False
        self._wake = threading.Event()
        self._stale: list[tuple[int, int]] = []

    @property
    def vcpu_id(self) -> int:
        return self._vcpu_id

    @property
    def kvm_run(self) -> memoryview:
        return self.run_area.view

    @property
    def in_run(self) -> bool:
        """A thread is inside KVM_RUN (so other ioctls wait for it)."""
        return self._running

    # -- KVM_RUN and kicks --------------------------------------------------------------------

    def run(self) -> int:
        with self.mutex:
            with self._signal_lock:
                self._running = True
                self._signal = False  # a signal to a thread outside KVM_RUN went to its handler
                if self._wake.is_set():
                    self._wake.clear()
            try:
                self._before_entry()
                if self.run_area.immediate_exit:
                    reason = self.run_area.exit(C.KVM_EXIT_INTR)
                else:
                    reason = self._enter()
                if reason == C.KVM_EXIT_INTR:
                    self.run_area.immediate_exit = False
                return reason
            finally:
                with self._signal_lock:
                    self._running = False
                    self._signal = False
                self._after_exit()

    def kick(self) -> None:
        """From any thread: the running KVM_RUN returns KVM_EXIT_INTR before its next
        instruction (a halted vCPU wakes), or the next one returns it at once."""
        self.run_area.immediate_exit = True
        with self._signal_lock:
            if self._running:
                self._signal = True
                self._wake.set()

    def _signal_pending(self) -> bool:
        """For the arch's KVM_RUN loop, between two instructions: apply translation drops other
        threads asked for, and say whether a kick arrived (the loop then exits with
        :meth:`_exit_intr`)."""
        if self._stale:
            self._drop_stale()
        return self._signal

    def _exit_intr(self) -> int:
        return self.run_area.exit(C.KVM_EXIT_INTR)

    def _wait_for_signal(self) -> None:
        """A halted vCPU with nothing to wake it but a signal (``kvm_vcpu_block``)."""
        self._wake.wait()
        self._wake.clear()

    # -- translations -------------------------------------------------------------------------

    def invalidate(self, lo: int, hi: int) -> None:
        """Guest memory ``[lo, hi)`` changed under the engine: drop its translations now if no
        thread is in an ioctl of this vCPU, else at the running thread's next poll."""
        if self.mutex.acquire(blocking=False):
            try:
                self._drop_translations(lo, hi)
            finally:
                self.mutex.release()
            return
        with self._signal_lock:
            self._stale.append((lo, hi))

    def _drop_stale(self) -> None:
        with self._signal_lock:
            stale, self._stale = self._stale, []
        for lo, hi in stale:
            self._drop_translations(lo, hi)

    # -- structures ---------------------------------------------------------------------------

    def _checked(self, ioctl: str, data: bytes) -> bytes:
        """``data`` if it is the size of ``ioctl``'s structure; InvalidRequest otherwise."""
        if ioctl not in self._sizes:
            raise UnsupportedByArch(f"{ioctl} does not exist on {self._layout.arch.kvm_host_arch}")
        if len(data) != self._sizes[ioctl]:
            raise InvalidRequest(f"{ioctl} takes {self._sizes[ioctl]} bytes, got {len(data)}")
        return bytes(data)

    # -- the VcpuHandle ioctls: checked and serialised here, modelled by the arch --------------

    def set_guest_debug(self, dbg: bytes) -> None:
        dbg = self._checked("KVM_SET_GUEST_DEBUG", dbg)
        with self.mutex:
            self._set_guest_debug(dbg)

    def get_regs(self) -> bytearray:
        with self.mutex:
            return self._get_regs()

    def set_regs(self, regs: bytes) -> None:
        regs = self._checked("KVM_SET_REGS", regs)
        with self.mutex:
            self._set_regs(regs)

    def get_sregs(self) -> bytearray:
        with self.mutex:
            return self._get_sregs()

    def set_sregs(self, sregs: bytes) -> None:
        sregs = self._checked("KVM_SET_SREGS", sregs)
        with self.mutex:
            self._set_sregs(sregs)

    MAX_ONE_REG_SIZE = 8
    """The largest ONE_REG value the arch's kernel copies (its ``union`` of register values);
    a larger id is EINVAL before the model sees it."""

    def get_one_reg(self, reg_id: int) -> int:
        size = C.one_reg_size(reg_id)
        if size > self.MAX_ONE_REG_SIZE:
            raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, f"id {reg_id:#x}")
        with self.mutex:
            value = self._get_one_reg(reg_id)
        return value & ((1 << (8 * size)) - 1)

    def set_one_reg(self, reg_id: int, value: int) -> None:
        size = C.one_reg_size(reg_id)
        if size > self.MAX_ONE_REG_SIZE or not 0 <= value < 1 << (8 * size):
            raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, f"id {reg_id:#x} = {value:#x}")
        with self.mutex:
            self._set_one_reg(reg_id, value)

    def translate(self, gva: int) -> int | None:
        if not 0 <= gva < 1 << 64:
            raise InvalidRequest(f"{gva:#x} is not a 64-bit address")
        with self.mutex:
            return self._translate(gva)

    # -- what the arch's model supplies -------------------------------------------------------

    def _before_entry(self) -> None:
        """What ``kvm_arch_vcpu_ioctl_run`` does before it looks at ``immediate_exit``."""

    def _enter(self) -> int:
        """The arch's KVM_RUN: run the guest until the model exits; the exit reason."""
        raise NotImplementedError

    def _after_exit(self) -> None:
        """What the kernel does as KVM_RUN returns (``vcpu_put``)."""

    def _drop_translations(self, lo: int, hi: int) -> None:
        raise NotImplementedError

    def _set_guest_debug(self, dbg: bytes) -> None:
        raise NotImplementedError

    def _get_regs(self) -> bytearray:
        raise NotImplementedError

    def _set_regs(self, regs: bytes) -> None:
        raise NotImplementedError

    def _get_sregs(self) -> bytearray:
        raise NotImplementedError

    def _set_sregs(self, sregs: bytes) -> None:
        raise NotImplementedError

    def _get_one_reg(self, reg_id: int) -> int:
        raise KernelError("KVM_GET_ONE_REG", errno.EINVAL, f"id {reg_id:#x}")

    def _set_one_reg(self, reg_id: int, value: int) -> None:
        raise KernelError("KVM_SET_ONE_REG", errno.EINVAL, f"id {reg_id:#x}")

    def _translate(self, gva: int) -> int | None:
        raise NotImplementedError
