"""ioctl request numbers, computed for the host arch's ``_IOC`` encoding.

The encoding is not universal. asm-generic (x86, arm64, s390) packs nr 0-7, type 8-15, a 14-bit size
at 16-29 and a 2-bit direction at 30-31 with NONE=0, WRITE=1, READ=2. PowerPC uses a 13-bit size and
a 3-bit direction with NONE=1, READ=2, WRITE=4 (``arch/powerpc/include/uapi/asm/ioctl.h``;
docs/reference/kvm-debug-abi.md §1.3). So ``KVM_RUN`` is 0xAE80 on x86 but 0x2000AE80 on ppc,
and a VMM that computes ppc numbers with the generic macro gets ENOTTY.
"""

from __future__ import annotations

from dataclasses import dataclass

KVMIO = 0xAE


@dataclass(frozen=True, slots=True)
class IocEncoding:
    name: str
    size_bits: int
    dir_bits: int
    none: int
    write: int
    read: int

    def ioc(self, direction: int, typ: int, nr: int, size: int) -> int:
        if size >= 1 << self.size_bits:
            raise ValueError(f"ioctl argument size {size} does not fit {self.size_bits} bits")
        size_shift = 16
        dir_shift = size_shift + self.size_bits
        return (direction << dir_shift) | (size << size_shift) | (typ << 8) | nr

    def io(self, nr: int, typ: int = KVMIO) -> int:
        return self.ioc(self.none, typ, nr, 0)

    def ior(self, nr: int, size: int, typ: int = KVMIO) -> int:
        return self.ioc(self.read, typ, nr, size)

    def iow(self, nr: int, size: int, typ: int = KVMIO) -> int:
        return self.ioc(self.write, typ, nr, size)

    def iowr(self, nr: int, size: int, typ: int = KVMIO) -> int:
        return self.ioc(self.read | self.write, typ, nr, size)


GENERIC = IocEncoding("asm-generic", size_bits=14, dir_bits=2, none=0, write=1, read=2)
POWERPC = IocEncoding("powerpc", size_bits=13, dir_bits=3, none=1, write=4, read=2)
