"""The entry state of a 64-bit ELF on the e5500/e6500 hosts is QEMU's: ``qemu-system-ppc64 -M
ppce500 -cpu e5500|e6500 -kernel ELF -S`` read through its gdbstub (registers) and its monitor's
``info tlb`` (the initial TLB1 mapping), against KVM_GET_REGS and KVM_TRANSLATE.

One difference is by design: MSR[GS], which a BookE-HV kernel adds to the guest's MSR
(``kvmppc_set_msr``); QEMU runs the guest as the machine itself. Also checked: QEMU's e5500/e6500
report the PVRs the Unicorn CPU-table fix verifies (``guestdbg_booke.emuhost.cpu_table``).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from emuhost.machine import CORES64, SREGS, L, Machine

from guestdbg_booke import regs
from guestdbg_booke.emuhost import board
from guestdbg_booke.emuhost.cpu_table import PVR
from guestdbg_booke.fidelity.rsp import RspClient, check

QEMU64 = "qemu-system-ppc64"
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which(QEMU64) is None, reason=f"no {QEMU64}"),
]


@contextmanager
def qemu_halted_at_entry(elf: Path, cpu: str) -> Iterator[RspClient]:
    with tempfile.TemporaryDirectory(prefix="guestdbg-qemu64-") as tmp:
        path = str(Path(tmp) / "gdb.sock")
        cmd = [QEMU64, "-M", "ppce500", "-cpu", cpu, "-nic", "none", "-S",
               "-gdb", f"unix:{path},server=on,wait=off", "-nographic", "-display", "none",
               "-serial", "null", "-monitor", "none", "-kernel", str(elf)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    sock.connect(path)
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, "no gdbstub"
                    time.sleep(0.02)
            rsp = RspClient(sock, 20)
            yield rsp
            rsp.close()
        finally:
            sock.close()
            proc.kill()
            proc.wait()


NAMES = ("pc", "msr", "r1", "r3", "r6", "r7", "pvr")
_TLB_ROW = re.compile(r"0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\d+)([KMG])\s+(\d+)\s+(\d)\s+(\S+)")


def qemu_entry(elf: Path, cpu: str) -> tuple[dict[str, int], list[tuple[int, int, int]]]:
    """QEMU's registers at the entry and its valid TLB1 entries (EPN, RPN, bytes)."""
    with qemu_halted_at_entry(elf, cpu) as rsp:
        by_name = {r.name: r for r in rsp.target_registers()}
        values = {n: int(check(rsp.command(f"p{by_name[n].regnum:x}"), n), 16) for n in NAMES}
        tlb = rsp.monitor("info tlb")
    tlb1 = tlb[tlb.index("TLB1:") :]
    unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    rows = [(int(m[1], 16), int(m[2], 16), int(m[3]) * unit[m[4]]) for m in _TLB_ROW.finditer(tlb1)]
    return values, rows


@pytest.mark.parametrize("core", CORES64)
def test_entry_registers_and_boot_mapping_match_qemu_ppce500(core: str) -> None:
    m = Machine("traps64", core)
    theirs, tlb1 = qemu_entry(m.elf, core)
    ours = {n: m.reg(n) if n in ("pc", "msr") else m.gpr(int(n[1:])) for n in NAMES[:-1]}
    ours["msr"] &= ~regs.MSR_GS  # kvmppc_set_msr adds it on BookE-HV
    ours["pvr"] = L.field(SREGS, "pvr").get(m.vcpu.get_sregs())
    assert ours == theirs
    assert theirs["pvr"] == PVR[core]
    # one boot mapping, 0 -> 0; ours answers KVM_TRANSLATE exactly inside it
    assert len(tlb1) == 1
    epn, rpn, size = tlb1[0]
    assert (epn, rpn) == (0, 0) and size == theirs["r7"]
    vcpu = m.vm.vcpus[0]
    assert vcpu.translate(size - 4) == size - 4
    assert vcpu.translate(size) is None


def test_the_boot_mapping_size_follows_the_board_rule() -> None:
    m = Machine("traps64", "e5500")
    assert m.gpr(7) == board.initial_map_size(m.gpr(3) + board.DTB_SIZE)
