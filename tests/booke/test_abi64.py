"""The BookE plugin's one uapi layout is also the 64-bit host kernel's (e5500, e6500).

``tests/test_abi_truth.py`` compiles every declaration for 32-bit PowerPC. The 64-bit cores run
under a 64-bit kernel (``CONFIG_PPC_BOOK3E_64``), whose ``struct kvm_regs``, ``kvm_sregs``,
``kvm_run`` and ``kvm_guest_debug`` must be the same bytes for one layout to serve both
(docs/reference/kvm-debug-abi.md §9.2): here the same uapi headers are compiled by the same
cross compiler with ``-m64``, and every offset, size, constant (VR0-31, VSCR, VRSAVE, EPCR ...)
and ioctl number must hold again. The compiler's own ``__powerpc64__`` proves it really compiled
64-bit.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from abi_check import ToolchainMissing, check_layout, toolchain_for
from abi_check.toolchain import Toolchain

from guestdbg.kvm import constants
from guestdbg.kvm.uapi import AbiLayout
from guestdbg_booke import abi

GENERIC = {n: v for n, v in vars(constants).items() if n.startswith("KVM_") and isinstance(v, int)}


@pytest.fixture(scope="module")
def ppc64() -> Toolchain:
    try:
        tc = toolchain_for("powerpc")
    except ToolchainMissing as e:
        pytest.skip(f"cannot compile for powerpc: {e}")
    return dataclasses.replace(tc, flags=(*tc.flags, "-m64"))


def test_the_toolchain_really_compiles_64bit_powerpc(ppc64: Toolchain) -> None:
    probe = subprocess.run(
        [ppc64.cc, *ppc64.flags, "-dM", "-E", "-x", "c", "/dev/null"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "#define __powerpc64__ 1" in probe
    assert "#define __SIZEOF_LONG__ 8" in probe
    assert "#define __BIG_ENDIAN__ 1" in probe


def test_the_layout_holds_against_the_64bit_kernels_view_of_the_headers(ppc64: Toolchain) -> None:
    layout = abi.layout()
    report = check_layout(layout, GENERIC, ppc64)
    assert report.failures == [], report.summary()
    names = {c.name for c in report.checks}
    for name in ("KVM_REG_PPC_VR0", "KVM_REG_PPC_VR31", "KVM_REG_PPC_VSCR", "KVM_REG_PPC_EPCR"):
        assert f"{name} == {abi.CONSTANTS[name]:#x}" in names
    assert "sizeof(struct kvm_regs) == 392" in names
    assert f"KVM_SET_GUEST_DEBUG == {layout.ioctls['KVM_SET_GUEST_DEBUG']:#x}" in names


def test_a_wrong_vector_register_id_is_caught(ppc64: Toolchain) -> None:
    """VR0 is 0x40 in the index field (after FPR0-31 at 0x20); 0x60 would be VSR0."""
    wrong = dataclasses.replace(
        abi.PPC_ABI, constants={**abi.CONSTANTS, "KVM_REG_PPC_VR0": 0x1040000000000060}
    )
    report = check_layout(AbiLayout(wrong), GENERIC, ppc64)
    assert report.failed_names == ["KVM_REG_PPC_VR0 == 0x1040000000000060"]
