"""What the truth test asserts about one arch's uapi: one :class:`Check` per C fact.

A check is a C constant expression that must be true against the real headers, with a name a
person can grep for. The facts are taken from the layout itself (``AbiLayout.flat_fields``,
``ArchAbi.constants``, ``AbiLayout.ioctls``), never restated here, so a plugin's declaration is
the only source of what is claimed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from guestdbg.kvm.uapi import GENERIC_STRUCTS, KVM_RUN_PREFIX, AbiLayout


@dataclass(frozen=True)
class Check:
    name: str
    """What is claimed, e.g. ``offsetof(struct kvm_regs, rip) == 128``."""
    expr: str
    """The C constant expression that holds when the claim is true."""
    guard: str = ""
    """A macro that must be defined for ``expr`` to mean anything (constants, ioctls)."""
    optional: bool = False
    """The header may leave ``guard`` undefined for this arch: ``linux/kvm.h`` defines some
    generic names only under ``__KVM_HAVE_*`` (``KVM_CAP_VCPU_EVENTS`` is x86/arm64 only).
    Undefined is then reported, not failed; the value is checked wherever it is defined."""


def checks_for(layout: AbiLayout, generic_constants: Mapping[str, int]) -> list[Check]:
    """Every claim ``layout`` makes: byte order, struct sizes, leaf offsets and sizes,
    the arch's and the generic constants, and every ioctl number."""
    arch = layout.arch
    want = "__ORDER_BIG_ENDIAN__" if layout.byteorder == "big" else "__ORDER_LITTLE_ENDIAN__"
    checks = [Check(f"byte order is {layout.byteorder}", f"__BYTE_ORDER__ == {want}")]
    for ctype in (*arch.structs, *GENERIC_STRUCTS):
        if ctype != KVM_RUN_PREFIX:  # declared only up to the exit union
            size = layout.sizeof(ctype)
            checks.append(Check(f"sizeof({ctype}) == {size}", f"sizeof({ctype}) == {size}"))
        for path, offset, size in layout.flat_fields(ctype):
            checks.append(
                Check(
                    f"offsetof({ctype}, {path}) == {offset}",
                    f"__builtin_offsetof({ctype}, {path}) == {offset}",
                )
            )
            checks.append(
                Check(
                    f"sizeof({ctype}.{path}) == {size}",
                    f"sizeof((({ctype} *)0)->{path}) == {size}",
                )
            )
    for name, value in sorted(generic_constants.items()):
        if name not in arch.constants:
            checks.append(_macro_check(name, value, optional=True))
    for name, value in sorted(arch.constants.items()):
        checks.append(_macro_check(name, value))
    for name, value in sorted(layout.ioctls.items()):
        checks.append(_macro_check(name, value))
    return checks


def _macro_check(name: str, value: int, optional: bool = False) -> Check:
    return Check(
        f"{name} == {value:#x}",
        f"(unsigned long long)({name}) == {value:#x}ULL",
        guard=name,
        optional=optional,
    )
