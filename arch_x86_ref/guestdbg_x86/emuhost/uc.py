"""The few Unicorn names the model uses, typed for a strict mypy.

Unicorn's Python binding declares its classes but not its methods' types, so under strict mypy
every call would be an "untyped call". The CPU object is therefore ``Any`` here, and the
constants are re-exported as ints, in one place instead of ``type: ignore`` on every line.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import unicorn as _unicorn
from unicorn import x86_const

Uc: TypeAlias = Any
"""A ``unicorn.Uc`` (x86-64)."""

UcError: type[Exception] = getattr(_unicorn, "UcError")  # noqa: B009

UC_HOOK_CODE: int = getattr(_unicorn, "UC_HOOK_CODE")  # noqa: B009
UC_HOOK_INTR: int = getattr(_unicorn, "UC_HOOK_INTR")  # noqa: B009
UC_HOOK_MEM_READ_PROT: int = getattr(_unicorn, "UC_HOOK_MEM_READ_PROT")  # noqa: B009
UC_HOOK_MEM_WRITE_PROT: int = getattr(_unicorn, "UC_HOOK_MEM_WRITE_PROT")  # noqa: B009
UC_MEM_WRITE_PROT: int = getattr(_unicorn, "UC_MEM_WRITE_PROT")  # noqa: B009
UC_PROT_ALL: int = getattr(_unicorn, "UC_PROT_ALL")  # noqa: B009
UC_PROT_EXEC: int = getattr(_unicorn, "UC_PROT_EXEC")  # noqa: B009
UC_PROT_READ: int = getattr(_unicorn, "UC_PROT_READ")  # noqa: B009
UC_PROT_WRITE: int = getattr(_unicorn, "UC_PROT_WRITE")  # noqa: B009
UC_ERR_INSN_INVALID: int = getattr(_unicorn, "UC_ERR_INSN_INVALID")  # noqa: B009

X = x86_const
"""Register ids (``X.UC_X86_REG_RIP``...)."""


_UC_CLASS: Any = getattr(_unicorn, "Uc")  # noqa: B009


def new_x86_64() -> Uc:
    return _UC_CLASS(getattr(_unicorn, "UC_ARCH_X86"), getattr(_unicorn, "UC_MODE_64"))  # noqa: B009


def errno_of(err: Exception) -> int:
    return int(getattr(err, "errno", -1))
