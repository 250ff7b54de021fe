"""The few libc calls the /dev/kvm layer makes, bound with cffi in ABI mode (no compiler needed).

``ioctl`` is called through its real variadic prototype; cffi releases the GIL around every call,
so a vCPU thread blocked in ``KVM_RUN`` does not stop the VMM's other threads. Failures become
:class:`~guestdbg.errors.KernelError` naming the ioctl and the errno, read from cffi's per-thread
copy of ``errno`` taken right after the call.
"""

from __future__ import annotations

import mmap as _mmap
import signal
import threading
from typing import Any

import cffi

from ..errors import GuestDebugError, KernelError

ffi = cffi.FFI()
ffi.cdef(
    """
    int ioctl(int fd, unsigned long request, ...);
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
    int munmap(void *addr, size_t length);
    int pthread_kill(unsigned long thread, int sig);
    """
)
lib: Any = ffi.dlopen(None)

PROT_RW = _mmap.PROT_READ | _mmap.PROT_WRITE
MAP_SHARED = _mmap.MAP_SHARED
MAP_ANON_PRIVATE = _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS
MAP_NORESERVE = 0x4000  # asm-generic/mman.h (x86, arm64, ppc alike)
MAP_FIXED = 0x10  # asm-generic/mman-common.h
_MAP_FAILED = ffi.cast("void *", -1)

NO_ARG = ffi.cast("long", 0)
"""The third argument of an ioctl that takes none (``KVM_RUN``, ``KVM_GET_API_VERSION``)."""


def int_arg(value: int) -> Any:
    """An integer ioctl argument (``KVM_CREATE_VCPU``'s id, ``KVM_CHECK_EXTENSION``'s cap)."""
    return ffi.cast("long", value)


def ioctl(fd: int, request: int, arg: Any, name: str) -> int:
    """``ioctl(2)``; a negative return raises KernelError(name, errno)."""
    rc: int = lib.ioctl(fd, request, arg)
    if rc < 0:
        raise KernelError(name, ffi.errno)
    return rc


def mmap(length: int, flags: int, fd: int = -1, what: str = "mmap") -> Any:
    """A read-write mapping; anonymous unless ``fd`` is given. Returns the ``void *`` cdata."""
    ptr = lib.mmap(ffi.NULL, length, PROT_RW, flags, fd, 0)
    if ptr == _MAP_FAILED:
        raise KernelError(what, ffi.errno)
    return ptr


def munmap(ptr: Any, length: int) -> None:
    lib.munmap(ptr, length)


def make_inert(ptr: Any, length: int) -> None:
    """Swap a mapping, in place, for fresh anonymous zero pages.

    Used on ``kvm_run`` at close: the vCPU file loses its last mapping (so the kernel can free
    it) while any memoryview a caller kept over the old address reads zeros instead of faulting.
    """
    lib.mmap(ptr, length, PROT_RW, MAP_ANON_PRIVATE | MAP_FIXED, -1, 0)


def _interrupt_only(signum: int, frame: object) -> None:
    """Does nothing: the signal's only job is to make a blocked KVM_RUN return EINTR."""


def ensure_kick_handler(signum: int) -> None:
    """Give ``signum`` a handler, so that sending it interrupts ``KVM_RUN`` rather than killing
    the process (default action) or vanishing (an ignored signal is never pending, so KVM_RUN
    would not notice it). A handler someone already installed is kept: any handler interrupts.
    Python lets only the main thread install handlers, so the first ``Kvm`` is made there."""
    current = signal.getsignal(signum)
    if current not in (signal.SIG_DFL, signal.SIG_IGN):
        return
    if threading.current_thread() is not threading.main_thread():
        raise GuestDebugError(
            f"the kick signal {signal.Signals(signum).name} has no handler and only the main "
            "thread can install one: open the first Kvm on the main thread"
        )
    signal.signal(signum, _interrupt_only)


def current_thread_id() -> int:
    """The calling thread's ``pthread_t`` for :func:`signal_thread`: CPython's
    ``threading.get_ident()`` returns ``pthread_self()`` on POSIX (``Python/thread_pthread.h``;
    the id ``signal.pthread_kill`` takes), without a foreign call on the KVM_RUN path."""
    return threading.get_ident()


def signal_thread(thread: int, signum: int) -> None:
    lib.pthread_kill(thread, signum)
