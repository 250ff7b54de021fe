"""Guest memory and the VM fd: KVM_TRANSLATE, the VMM's mapping of guest RAM, and the
capability ioctls.

guestdbg writes trap words and reads guest memory for GDB through ``read_phys``/``write_phys``:
an access that leaves RAM must raise :class:`~guestdbg.errors.BadAddress` and change nothing
(a clamped read hands GDB bytes of another address; a partial write leaves half a trap word).
"""

from __future__ import annotations

from ...errors import BadAddress, KernelError
from ...kvm import constants as C
from .bench import Bench

UNKNOWN_CAP = 0xFFFF
"""A capability number no kernel defines (``KVM_CHECK_EXTENSION`` answers 0 for it)."""
SCRATCH_MIN = 16


def check_translate(bench: Bench) -> None:
    pc = bench.pc
    gpa = bench.vcpu.translate(pc)
    assert isinstance(gpa, int), f"KVM_TRANSLATE of the PC {pc:#x} returned {gpa!r}"
    try:
        bench.vm.read_phys(gpa, 4)
    except BadAddress as e:
        raise AssertionError(f"KVM_TRANSLATE of the PC {pc:#x} gives {gpa:#x}, not RAM: {e}") from e
    outside = bench.profile.outside_ram
    got = bench.vcpu.translate(outside)
    assert got is None, f"KVM_TRANSLATE of the unmapped {outside:#x} returned {got!r}, not None"


def check_ram_round_trip(bench: Bench) -> None:
    base, size = bench.profile.scratch
    assert size >= SCRATCH_MIN, f"the profile's scratch has {size} bytes; the kit needs 16"
    vm = bench.vm
    kept = vm.read_phys(base, size)
    assert isinstance(kept, bytes | bytearray) and len(kept) == size, (
        f"read_phys({base:#x}, {size}) returned {type(kept).__name__} of {len(kept)} bytes"
    )
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(size))
    vm.write_phys(base, pattern)
    assert vm.read_phys(base, size) == pattern, "read_phys does not read what write_phys wrote"
    vm.write_phys(base + 3, b"\xa5\x5a")
    assert vm.read_phys(base + 2, 4) == pattern[2:3] + b"\xa5\x5a" + pattern[5:6], (
        "a 2-byte write_phys at an odd address did not land exactly there"
    )
    vm.write_phys(base, kept)
    assert vm.read_phys(base, size) == kept


def _bad_address(call: object, what: str) -> None:
    assert callable(call)
    try:
        got = call()
    except BadAddress:
        return
    except Exception as e:
        raise AssertionError(f"{what} raised {type(e).__name__}, not BadAddress") from e
    shown = f" (returned {len(got)} bytes)" if isinstance(got, bytes | bytearray) else ""
    raise AssertionError(f"{what} was accepted{shown}; it must raise BadAddress")


def check_outside_ram(bench: Bench) -> None:
    vm = bench.vm
    base, size = bench.profile.scratch
    end, outside = base + size, bench.profile.outside_ram
    _bad_address(lambda: vm.read_phys(outside, 4), f"read_phys({outside:#x}, 4) outside RAM")
    _bad_address(
        lambda: vm.read_phys(end - 4, 8), f"read_phys({end - 4:#x}, 8) running past RAM's end"
    )
    kept = vm.read_phys(end - 8, 8)
    _bad_address(
        lambda: vm.write_phys(end - 4, b"\xee" * 8),
        f"write_phys({end - 4:#x}, 8 bytes) running past RAM's end",
    )
    assert vm.read_phys(end - 8, 8) == kept, (
        "a write_phys refused for running past RAM's end wrote the part inside RAM"
    )
    _bad_address(
        lambda: vm.write_phys(outside, b"\xee" * 4), f"write_phys({outside:#x}) outside RAM"
    )


def check_extension(bench: Bench) -> None:
    vm = bench.vm
    for cap in (C.KVM_CAP_SET_GUEST_DEBUG, C.KVM_CAP_ONE_REG, UNKNOWN_CAP):
        answer = vm.check_extension(cap)
        assert type(answer) is int and answer >= 0, (
            f"KVM_CHECK_EXTENSION({cap}) answered {answer!r}, not a non-negative int"
        )
    assert vm.check_extension(C.KVM_CAP_SET_GUEST_DEBUG) > 0, (
        "KVM_CHECK_EXTENSION(KVM_CAP_SET_GUEST_DEBUG) answers 0: no guest debugging"
    )
    unknown = vm.check_extension(UNKNOWN_CAP)
    assert unknown == 0, f"KVM_CHECK_EXTENSION of the unknown capability {UNKNOWN_CAP} is {unknown}"


def check_enable_cap_unknown(bench: Bench) -> None:
    try:
        bench.vm.enable_cap(UNKNOWN_CAP)
    except KernelError:
        return
    except Exception as e:
        raise AssertionError(
            f"KVM_ENABLE_CAP of the unknown capability {UNKNOWN_CAP} raised "
            f"{type(e).__name__}, not KernelError"
        ) from e
    raise AssertionError(f"KVM_ENABLE_CAP of the unknown capability {UNKNOWN_CAP} was accepted")
