"""KVM uapi structures declared with cffi, and typed views over them in the target's byte order.

The generic structures are declared here; each arch plugin supplies the structures the kernel
declares per arch (``kvm_regs``, ``kvm_sregs``, ``kvm_guest_debug_arch``,
``kvm_debug_exit_arch``...). cffi computes the layout from the declarations with the running
machine's C alignment rules; the ABI truth test (``tests/test_abi_truth.py``) compiles the same
offsets and sizes against the real Linux headers, natively and for 32-bit big-endian PowerPC, so
a wrong declaration fails there rather than in a guest.

Values are read and written explicitly in the target's byte order, because the emulated e500mc
host runs on a little-endian machine but must hand out the same bytes a big-endian ppc kernel
would. On the hot path callers use precomputed :class:`Field` objects: one ``struct`` unpack at a
fixed offset, no name look-up.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import cffi

from . import ioc

ByteOrder = Literal["little", "big"]

GENERIC_CDEF_HEAD = """
struct kvm_one_reg { uint64_t id; uint64_t addr; };
struct kvm_translation {
    uint64_t linear_address; uint64_t physical_address;
    uint8_t valid; uint8_t writeable; uint8_t usermode; uint8_t pad[5];
};
struct kvm_userspace_memory_region {
    uint32_t slot; uint32_t flags;
    uint64_t guest_phys_addr; uint64_t memory_size; uint64_t userspace_addr;
};
struct kvm_enable_cap { uint32_t cap; uint32_t flags; uint64_t args[4]; uint8_t pad[64]; };
"""

GENERIC_CDEF_TAIL = """
struct kvm_guest_debug { uint32_t control; uint32_t pad; struct kvm_guest_debug_arch arch; };
struct kvm_run {
    uint8_t request_interrupt_window;
    uint8_t immediate_exit;
    uint8_t padding1[6];
    uint32_t exit_reason;
    uint8_t ready_for_interrupt_injection;
    uint8_t if_flag;
    uint16_t flags;
    uint64_t cr8;
    uint64_t apic_base;
    union {
        struct { uint64_t hardware_exit_reason; } hw;
        struct { uint8_t direction; uint8_t size; uint16_t port; uint32_t count;
                 uint64_t data_offset; } io;
        struct { struct kvm_debug_exit_arch arch; } debug;
        struct { uint64_t phys_addr; uint8_t data[8]; uint32_t len; uint8_t is_write; } mmio;
        struct { uint32_t suberror; uint32_t ndata; uint64_t data[16]; } internal;
        char padding[256];
    };
    uint64_t kvm_valid_regs;
    uint64_t kvm_dirty_regs;
    union { char padding[2048]; } s;
};
"""

KVM_RUN_PREFIX = "struct kvm_run"
"""Declared only up to the sync-regs area ``s`` (its arch contents are not declared): its size is
not the kernel's and is not checked."""

GENERIC_STRUCTS = (
    "struct kvm_one_reg",
    "struct kvm_translation",
    "struct kvm_userspace_memory_region",
    "struct kvm_enable_cap",
    "struct kvm_guest_debug",
    "struct kvm_run",
)


@dataclass(frozen=True, slots=True)
class Field:
    """One scalar field at a fixed offset, packed in the target's byte order."""

    offset: int
    codec: struct.Struct

    @property
    def size(self) -> int:
        return self.codec.size

    def get(self, buf: Any) -> int:
        return int(self.codec.unpack_from(buf, self.offset)[0])

    def put(self, buf: Any, value: int) -> None:
        self.codec.pack_into(buf, self.offset, value)


_SCALARS = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True)
class ArchAbi:
    """What an arch plugin declares about its KVM uapi."""

    kvm_host_arch: str
    """The Linux arch whose /dev/kvm this is: ``powerpc`` or ``x86_64``."""
    byteorder: ByteOrder
    encoding: ioc.IocEncoding
    cdef: str
    structs: tuple[str, ...]
    """Struct names declared by ``cdef`` that the truth test checks against the headers."""
    constants: dict[str, int]
    """Arch uapi constants (names as in the kernel headers) the truth test checks."""
    header: str = "linux/kvm.h"
    sync_regs_bit: int = 0
    """The ``kvm_valid_regs`` bit with which the kernel copies ``struct kvm_regs`` to the start
    of ``kvm_run.s`` at every exit (x86: ``KVM_SYNC_X86_REGS``, under KVM_CAP_SYNC_REGS); 0 where
    the arch's ``kvm_sync_regs`` does not begin with its ``kvm_regs``."""
    sync_copies: tuple[tuple[str, int, str], ...] = ()
    """What else the kernel copies into ``kvm_run.s`` at every exit, right after ``kvm_regs``
    and back to back, in ``kvm_sync_regs`` order: (the KVM_GET ioctl it stands for, its
    ``kvm_valid_regs`` bit, its struct). x86: ``kvm_sregs`` (KVM_SYNC_X86_SREGS) and
    ``kvm_vcpu_events`` (KVM_SYNC_X86_EVENTS)."""


class AbiLayout:
    """All uapi structures of one KVM host arch, with ioctl numbers in its encoding."""

    def __init__(self, arch: ArchAbi) -> None:
        self.arch = arch
        self.byteorder: ByteOrder = arch.byteorder
        self._prefix = ">" if arch.byteorder == "big" else "<"
        ffi = cffi.FFI()
        ffi.cdef(GENERIC_CDEF_HEAD + arch.cdef + GENERIC_CDEF_TAIL)
        self.ffi = ffi
        enc = arch.encoding
        self.encoding = enc
        size = ffi.sizeof
        self.ioctls: dict[str, int] = {
            # system and VM ioctls
            "KVM_GET_API_VERSION": enc.io(0x00),
            "KVM_CREATE_VM": enc.io(0x01),
            "KVM_CHECK_EXTENSION": enc.io(0x03),
            "KVM_GET_VCPU_MMAP_SIZE": enc.io(0x04),
            "KVM_CREATE_VCPU": enc.io(0x41),
            "KVM_SET_USER_MEMORY_REGION": enc.iow(0x46, size("struct kvm_userspace_memory_region")),
            "KVM_ENABLE_CAP": enc.iow(0xA3, size("struct kvm_enable_cap")),
            # vCPU ioctls
            "KVM_RUN": enc.io(0x80),
            "KVM_GET_REGS": enc.ior(0x81, size("struct kvm_regs")),
            "KVM_SET_REGS": enc.iow(0x82, size("struct kvm_regs")),
            "KVM_GET_SREGS": enc.ior(0x83, size("struct kvm_sregs")),
            "KVM_SET_SREGS": enc.iow(0x84, size("struct kvm_sregs")),
            "KVM_TRANSLATE": enc.iowr(0x85, size("struct kvm_translation")),
            "KVM_SET_GUEST_DEBUG": enc.iow(0x9B, size("struct kvm_guest_debug")),
            "KVM_GET_ONE_REG": enc.iow(0xAB, size("struct kvm_one_reg")),
            "KVM_SET_ONE_REG": enc.iow(0xAC, size("struct kvm_one_reg")),
        }
        for name, nr, ctype, direction in _OPTIONAL_IOCTLS:
            if self.has_struct(ctype):
                fn = enc.ior if direction == "r" else enc.iow
                self.ioctls[name] = fn(nr, size(ctype))
        self.ioctl_names = {v: k for k, v in self.ioctls.items()}

    def has_struct(self, ctype: str) -> bool:
        try:
            self.ffi.sizeof(ctype)
        except (cffi.FFIError, TypeError, ValueError):
            return False
        return True

    def sizeof(self, ctype: str) -> int:
        return int(self.ffi.sizeof(ctype))

    def offsetof(self, ctype: str, *path: str | int) -> int:
        return int(self.ffi.offsetof(ctype, *path))

    def field(self, ctype: str, *path: str | int) -> Field:
        """A scalar field by path: ``field("struct kvm_guest_debug", "arch", "bp", 2, "addr")``."""
        off = self.offsetof(ctype, *path)
        t = self.ffi.typeof(ctype)
        for step in path:
            t = t.item if isinstance(step, int) else dict(t.fields)[step].type
        if t.kind != "primitive":
            raise TypeError(f"{ctype}.{'.'.join(map(str, path))} is not a scalar")
        return Field(off, struct.Struct(self._prefix + _SCALARS[self.ffi.sizeof(t)]))

    def new(self, ctype: str) -> bytearray:
        """A zeroed buffer of the structure's size (an ioctl argument)."""
        return bytearray(self.sizeof(ctype))

    def flat_fields(self, ctype: str) -> Iterator[tuple[str, int, int]]:
        """Every scalar and array leaf as (C path, offset, size); what the truth test checks."""
        yield from _walk(self.ffi, self.ffi.typeof(ctype), "", 0)


def _walk(ffi: Any, t: Any, path: str, base: int) -> Iterator[tuple[str, int, int]]:
    for name, f in t.fields:
        sub = f"{path}.{name}" if path else name
        ft = f.type
        if name is None or name == "":
            yield from _walk(ffi, ft, path, base + f.offset)
            continue
        yield sub, base + f.offset, ffi.sizeof(ft)
        if ft.kind == "struct" or ft.kind == "union":
            yield from _walk(ffi, ft, sub, base + f.offset)
        elif ft.kind == "array" and ft.item.kind in ("struct", "union"):
            yield from _walk(ffi, ft.item, f"{sub}[1]", base + f.offset + ffi.sizeof(ft.item))


_OPTIONAL_IOCTLS = (
    ("KVM_GET_VCPU_EVENTS", 0x9F, "struct kvm_vcpu_events", "r"),
    ("KVM_SET_VCPU_EVENTS", 0xA0, "struct kvm_vcpu_events", "w"),
    ("KVM_GET_DEBUGREGS", 0xA1, "struct kvm_debugregs", "r"),
    ("KVM_SET_DEBUGREGS", 0xA2, "struct kvm_debugregs", "w"),
)
