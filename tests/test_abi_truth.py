"""Every uapi claim guestdbg makes holds against the real Linux headers, compiled for each arch.

The layouts come from the installed plugins through the registry, so a new arch plugin is checked
as soon as it is installed. x86-64 is compiled natively against Debian's ``linux-libc-dev``;
32-bit big-endian PowerPC with ``powerpc-linux-gnu-gcc`` against ``/usr/powerpc-linux-gnu/include``
(``linux-libc-dev-powerpc-cross``), which also proves the powerpc ``_IOC`` encoding of every ioctl
number. The second half shows the checker fails, by name, on layouts that are deliberately wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import subprocess

import pytest
from abi_check import (
    AbiReport,
    CompileError,
    ToolchainMissing,
    UnknownTriplet,
    check_layout,
    toolchain_for,
)

from guestdbg import plugins
from guestdbg.kvm import constants, ioc
from guestdbg.kvm.uapi import AbiLayout, ArchAbi

GENERIC_CONSTANTS = {
    name: value
    for name, value in vars(constants).items()
    if name.startswith("KVM_") and isinstance(value, int)
}
REGISTRY = plugins.load()


def _report(layout: AbiLayout) -> AbiReport:
    try:
        return check_layout(layout, GENERIC_CONSTANTS)
    except ToolchainMissing as e:
        pytest.skip(f"cannot compile for {layout.arch.kvm_host_arch}: {e}")


@pytest.fixture(scope="module")
def reports() -> dict[str, AbiReport]:
    """One compile per installed arch, shared by the tests that only read the result."""
    out: dict[str, AbiReport] = {}
    for name, info in REGISTRY.arches.items():
        # the per-arch test redoes a failed compile: it skips for a missing cross compiler and
        # fails, with the reason, for an arch the checker cannot name or a broken compile
        with contextlib.suppress(ToolchainMissing, UnknownTriplet, CompileError):
            out[name] = check_layout(info.layout(), GENERIC_CONSTANTS)
    return out


def _arch(name: str) -> ArchAbi:
    return REGISTRY.arches[name].layout().arch


@pytest.mark.parametrize("arch", sorted(REGISTRY.arches))
def test_plugin_layout_matches_the_real_uapi_headers(
    arch: str, reports: dict[str, AbiReport]
) -> None:
    report = reports.get(arch) or _report(REGISTRY.arches[arch].layout())
    assert report.failures == [], report.summary()
    # the claims really were compiled: every struct leaf, constant and ioctl of the plugin
    names = {c.name for c in report.checks}
    layout = REGISTRY.arches[arch].layout()
    assert {f"{k} == {v:#x}" for k, v in layout.ioctls.items()} <= names
    assert {f"{k} == {v:#x}" for k, v in layout.arch.constants.items()} <= names
    assert f"sizeof(struct kvm_guest_debug) == {layout.sizeof('struct kvm_guest_debug')}" in names


def test_every_generic_constant_is_defined_by_some_arch_header(
    reports: dict[str, AbiReport],
) -> None:
    """linux/kvm.h hides some generic names behind ``__KVM_HAVE_*`` (KVM_CAP_VCPU_EVENTS is not
    defined for powerpc); each must still be defined, and so checked, for at least one arch."""
    if not reports:
        pytest.skip("no arch could be compiled")
    unchecked = set.intersection(*({c.guard for c in r.undefined} for r in reports.values()))
    assert unchecked == set()


def test_ppc_numbers_need_the_powerpc_ioc_encoding() -> None:
    """With asm-generic's ``_IOC`` every ppc ioctl but one is wrong, and the checker names each.
    The exception is ``_IOWR`` (KVM_TRANSLATE): READ|WRITE is 3 << 30 in asm-generic and
    (2|4) << 29 on powerpc, the same top bits."""
    wrong = AbiLayout(dataclasses.replace(_arch("ppc_booke"), encoding=ioc.GENERIC))
    report = _report(wrong)
    expected = {f"{k} == {v:#x}" for k, v in wrong.ioctls.items() if k != "KVM_TRANSLATE"}
    assert set(report.failed_names) == expected


def test_a_field_declared_too_narrow_is_reported_by_name() -> None:
    """``status`` as uint16_t keeps every offset (``reserved`` stays at 12), only its width is
    wrong: the checker names that leaf, in the struct and where kvm_run embeds it, and nothing
    else."""
    ppc = _arch("ppc_booke")
    cdef = ppc.cdef.replace("uint32_t status;", "uint16_t status;")
    assert cdef != ppc.cdef
    report = _report(AbiLayout(dataclasses.replace(ppc, cdef=cdef)))
    assert report.failed_names == [
        "sizeof(struct kvm_debug_exit_arch.status) == 2",
        "sizeof(struct kvm_run.debug.arch.status) == 2",
    ]
    assert all("static assertion failed" in f.message for f in report.failures)


def test_a_wrong_constant_is_the_only_failure_reported() -> None:
    x86 = _arch("x86")
    wrong = {**x86.constants, "KVM_GUESTDBG_INJECT_BP": 0x00040000}
    report = _report(AbiLayout(dataclasses.replace(x86, constants=wrong)))
    assert report.failed_names == ["KVM_GUESTDBG_INJECT_BP == 0x40000"]


def test_a_field_the_header_does_not_have_is_reported_with_the_compiler_reason() -> None:
    x86 = _arch("x86")
    cdef = x86.cdef.replace("rip, rflags", "rip, eflags")
    report = _report(AbiLayout(dataclasses.replace(x86, cdef=cdef)))
    assert report.failed_names == [
        "offsetof(struct kvm_regs, eflags) == 136",
        "sizeof(struct kvm_regs.eflags) == 8",
    ]
    assert "has no member named 'eflags'" in report.failures[0].message


def test_a_constant_the_header_does_not_define_is_reported() -> None:
    x86 = _arch("x86")
    extra = {**x86.constants, "KVM_GUESTDBG_NO_SUCH_FLAG": 0x00200000}
    report = _report(AbiLayout(dataclasses.replace(x86, constants=extra)))
    assert report.failed_names == ["KVM_GUESTDBG_NO_SUCH_FLAG == 0x200000"]
    assert "not defined by the header" in report.failures[0].message


def test_a_wrong_byte_order_is_reported() -> None:
    wrong = AbiLayout(dataclasses.replace(_arch("ppc_booke"), byteorder="little"))
    assert _report(wrong).failed_names == ["byte order is little"]


def test_cross_headers_are_the_targets_not_the_hosts() -> None:
    """The x86 claims compiled with the powerpc toolchain fail: the cross build cannot fall back
    to the host's ``/usr/include`` (where x86's asm/kvm.h lives)."""
    try:
        ppc = toolchain_for("powerpc")
    except ToolchainMissing as e:
        pytest.skip(str(e))
    report = check_layout(REGISTRY.arches["x86"].layout(), GENERIC_CONSTANTS, ppc)
    assert "byte order is little" in report.failed_names
    assert "sizeof(struct kvm_regs) == 144" in report.failed_names


def test_an_arch_the_checker_cannot_name_fails_instead_of_skipping() -> None:
    with pytest.raises(UnknownTriplet, match="sparc"):
        toolchain_for("sparc")


READONLY_SLOTS = {"x86_64": True, "powerpc": False}
"""Which kernels have read-only memory slots (docs/reference/kvm-debug-abi.md §11.1): the x86
uapi header defines ``__KVM_HAVE_READONLY_MEM``, the PowerPC one never does. Kernels that moved
the choice into Kconfig (``HAVE_KVM_READONLY_MEM``) may drop the macro from their headers; a
failing x86 case on newer headers means that, and the page is to be read again."""


@pytest.mark.parametrize("arch", sorted(READONLY_SLOTS))
def test_the_arch_header_says_whether_the_kernel_has_read_only_slots(
    arch: str, tmp_path: pathlib.Path
) -> None:
    try:
        tc = toolchain_for(arch)
    except ToolchainMissing as e:
        pytest.skip(str(e))
    source = tmp_path / "readonly.c"
    source.write_text(
        "#include <linux/kvm.h>\n"
        "#ifndef KVM_MEM_READONLY\n#error the flag itself is generic\n#endif\n"
    )
    out = subprocess.run(
        [tc.cc, *tc.flags, "-std=gnu11", "-E", "-dM", str(source)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert ("#define __KVM_HAVE_READONLY_MEM" in out.stdout) is READONLY_SLOTS[arch]
