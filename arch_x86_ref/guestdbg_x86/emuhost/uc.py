"""The few Unicorn names the model uses, typed for a strict mypy.

Unicorn's Python binding declares its classes but not its methods' types, so under strict mypy
every call would be an "untyped call". The CPU object is therefore ``Any`` here, and the
constants are re-exported as ints, in one place instead of ``type: ignore`` on every line.
"""

from __future__ import annotations

import ctypes
import importlib
from collections.abc import Sequence
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


_LIB: Any = getattr(importlib.import_module("unicorn.unicorn_py3.unicorn"), "uclib", None)


class RegisterBank:
    """A fixed list of 64-bit registers read and written with one ``uc_reg_read_batch`` /
    ``uc_reg_write_batch`` call on preallocated buffers.

    The binding's ``reg_read`` costs about 3 us per register on this machine (it picks a
    register class per call), so ``kvm_regs`` alone cost 57 us; straight to the C API it is one
    call. Falls back to the binding where its internals are not the expected ones.
    """

    def __init__(self, uc: Uc, ids: Sequence[int]) -> None:
        n = len(ids)
        self._uc = uc
        self._list = list(ids)
        self._n = n
        self._ids = (ctypes.c_int * n)(*ids)
        self._vals = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * n)(*(base + 8 * i for i in range(n)))
        handle = getattr(uc, "_uch", None)
        self._fast = _LIB is not None and handle is not None
        self._handle = handle

    def read(self) -> list[int]:
        if not self._fast:
            return [int(v) for v in self._uc.reg_read_batch(self._list)]
        ctypes.memset(self._vals, 0, 8 * self._n)
        status = _LIB.uc_reg_read_batch(self._handle, self._ids, self._ptrs, self._n)
        if status:
            raise UcError(status)
        return list(self._vals)

    def write(self, values: Sequence[int]) -> None:
        if not self._fast:
            self._uc.reg_write_batch(list(zip(self._list, values, strict=True)))
            return
        for i, v in enumerate(values):
            self._vals[i] = v & 0xFFFFFFFFFFFFFFFF
        status = _LIB.uc_reg_write_batch(self._handle, self._ids, self._ptrs, self._n)
        if status:
            raise UcError(status)
