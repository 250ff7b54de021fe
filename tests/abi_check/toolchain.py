"""The C compiler and uapi header tree for a KVM host arch.

Debian names a cross compiler ``<triplet>-gcc`` and installs the matching uapi headers under
``/usr/<triplet>/include`` (``linux-libc-dev-<arch>-cross``). A cross compiler also searches
``/usr/include`` after its own tree, where the *host's* ``asm/kvm.h`` lives, so cross builds use
``-nostdinc`` with only the compiler's own headers and the target's tree: a header the target
lacks is then an error, never a silent fall-back to the host's.
"""

from __future__ import annotations

import functools
import pathlib
import shutil
import subprocess
from dataclasses import dataclass

TRIPLETS = {
    "x86_64": "x86_64-linux-gnu",
    "powerpc": "powerpc-linux-gnu",
    "powerpc64": "powerpc64-linux-gnu",
    "arm64": "aarch64-linux-gnu",
    "s390": "s390x-linux-gnu",
    "riscv": "riscv64-linux-gnu",
    "loongarch": "loongarch64-linux-gnu",
    "mips": "mips-linux-gnu",
}
"""Linux arch name (``ArchAbi.kvm_host_arch``) -> the GNU triplet Debian's compilers use."""


class ToolchainMissing(Exception):
    """No compiler (or no uapi headers) for an arch on this machine; the reason says which."""


class UnknownTriplet(LookupError):
    """A plugin declares a ``kvm_host_arch`` this checker has no compiler name for (a gap in
    :data:`TRIPLETS`, not a missing package: the truth test fails rather than skips)."""


@dataclass(frozen=True)
class Toolchain:
    triplet: str
    cc: str
    flags: tuple[str, ...]
    """Include flags that point the compiler at this arch's uapi headers only."""


def toolchain_for(kvm_host_arch: str) -> Toolchain:
    """The compiler for ``kvm_host_arch``; raises :class:`ToolchainMissing` with the package
    to install when it is absent."""
    triplet = TRIPLETS.get(kvm_host_arch)
    if triplet is None:
        raise UnknownTriplet(
            f"no GNU triplet known for kvm_host_arch {kvm_host_arch!r}; add it to "
            "tests/abi_check/toolchain.py TRIPLETS"
        )
    if triplet == _native_triplet():
        return Toolchain(triplet, "gcc", ())
    cc = shutil.which(f"{triplet}-gcc")
    if cc is None:
        raise ToolchainMissing(
            f"{triplet}-gcc is not installed (Debian: gcc-{triplet}, "
            f"linux-libc-dev-{_debian_arch(kvm_host_arch)}-cross)"
        )
    headers = pathlib.Path("/usr") / triplet / "include"
    if not (headers / "linux" / "kvm.h").is_file():
        raise ToolchainMissing(f"{headers}/linux/kvm.h is missing (uapi cross headers)")
    builtin = subprocess.run(
        [cc, "-print-file-name=include"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Toolchain(triplet, cc, ("-nostdinc", "-isystem", builtin, "-isystem", str(headers)))


@functools.cache
def _native_triplet() -> str:
    if shutil.which("gcc") is None:
        return ""
    out = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True)
    return out.stdout.strip()


def _debian_arch(kvm_host_arch: str) -> str:
    return {"x86_64": "amd64", "arm64": "arm64", "powerpc": "powerpc"}.get(
        kvm_host_arch, kvm_host_arch
    )
