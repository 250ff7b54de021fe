"""An engine's process keeps glibc's mmap threshold fixed: a large block freed does not make
the next one of its size come from a thread's arena, where its pages would stay resident
after it is freed (docs/reference/unicorn.md §12)."""

from __future__ import annotations

import ctypes

import pytest

from guestdbg.emuhost import unicorn as ucc

_IS_MMAPPED = 0x2
"""The bit of a glibc chunk's size field (the word before the block) that marks a block
mapped on its own."""


def test_a_large_block_is_still_mapped_after_one_of_its_size_was_freed() -> None:
    libc = ctypes.CDLL(None)
    if getattr(libc, "mallopt", None) is None:
        pytest.skip("not glibc")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    ucc.new_uc(ucc.UC_ARCH_PPC, ucc.UC_MODE_PPC32 | ucc.UC_MODE_BIG_ENDIAN)
    assert ucc.fix_malloc_thresholds()
    size = 4 << 20
    first = libc.malloc(size)
    libc.free(first)  # with a dynamic threshold, this raises it above `size`
    second = libc.malloc(size)
    try:
        header = ctypes.c_size_t.from_address(second - ctypes.sizeof(ctypes.c_size_t)).value
        assert header & _IS_MMAPPED
    finally:
        libc.free(second)
