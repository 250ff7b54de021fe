"""The ABI truth checker: every declared layout, constant and ioctl number, compiled against the
real Linux uapi headers of the arch it describes.

``assertions`` turns an :class:`~guestdbg.kvm.uapi.AbiLayout` into named checks, ``toolchain``
finds the C compiler and header tree for a KVM host arch, and ``compiled`` renders the checks as
C11 ``_Static_assert`` lines, compiles them with ``-fsyntax-only`` and maps each compiler error
back to the check on its line.
"""

from __future__ import annotations

from .assertions import Check, checks_for
from .compiled import AbiReport, CompileError, Failure, check_layout
from .toolchain import Toolchain, ToolchainMissing, UnknownTriplet, toolchain_for

__all__ = [
    "AbiReport",
    "Check",
    "CompileError",
    "Failure",
    "Toolchain",
    "ToolchainMissing",
    "UnknownTriplet",
    "check_layout",
    "checks_for",
    "toolchain_for",
]
