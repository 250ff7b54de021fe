"""ELF loading and the boot state QEMU's ppce500 gives a -kernel ELF (ppce500_cpu_reset), and the
guest builder."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestdbg.errors import BadAddress, InvalidRequest
from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg_booke import regs
from guestdbg_booke.emuhost import EmulatedBookeVm, board
from guestdbg_booke.guests import GuestBuildError, build
from guestdbg_booke.guests.build import PACKAGE_DIR

from .machine import GUESTS, L, Machine, guest, is_hv

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_every_vcpu_gets_the_ppce500_boot_state(core: str) -> None:
    m = Machine("smp", core, smp=2)
    for n in range(2):
        assert m.reg("pc", vcpu=n) == m.sym["_start"]
        gpr = [m.reg("gpr", i, vcpu=n) for i in range(32)]
        assert gpr[1] == 0x00FFFFF8
        assert gpr[3] == 0x01900000  # QEMU: (1 MiB + image + 24 MiB) & ~1 MiB
        assert gpr[6] == board.EPAPR_MAGIC
        assert gpr[7] == 64 << 20
        assert [g for i, g in enumerate(gpr) if i not in (1, 3, 6, 7)] == [0] * 28
        msr = m.reg("msr", vcpu=n)
        assert msr == (regs.MSR_GS if is_hv(core) else 0)  # HV: kvmppc_set_msr adds GS


def test_a_guest_image_runs_unchanged_on_both_cores(core: str) -> None:
    assert Machine("loop", core).run_to_done() == 100


def test_non_powerpc_or_missing_files_are_refused(tmp_path: Path) -> None:
    vm = EmulatedBookeVm()
    bogus = tmp_path / "x.elf"
    bogus.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(InvalidRequest):
        vm.load_elf(bogus)
    with pytest.raises(InvalidRequest):
        vm.load_elf(tmp_path / "missing.elf")


def test_an_image_larger_than_ram_is_a_bad_address() -> None:
    vm = EmulatedBookeVm(ram_size=1 << 20)  # the guests link at 1 MiB
    with pytest.raises(BadAddress):
        vm.load_elf(guest("loop"))


def test_the_builder_reuses_an_unchanged_build_and_rebuilds_a_changed_one(tmp_path: Path) -> None:
    src = tmp_path / "g.S"
    src.write_text((GUESTS / "spin.S").read_text())
    first = build(src, tmp_path / "out")
    assert build(src, tmp_path / "out") == first
    src.write_text(src.read_text() + "\n    nop\n")
    second = build(src, tmp_path / "out")
    assert second != first and second.exists()


def test_an_assembler_error_is_a_clear_build_error(tmp_path: Path) -> None:
    src = tmp_path / "bad.S"
    src.write_text("    not_an_instruction r1\n")
    with pytest.raises(GuestBuildError, match="not_an_instruction"):
        build(src, tmp_path)


def test_the_packaged_linker_script_and_hostio_include_serve_sources_elsewhere(
    tmp_path: Path,
) -> None:
    src = tmp_path / "g.S"
    src.write_text(
        '    .include "hostio.inc"\n    .section .text.start, "ax"\n    .globl _start\n'
        "_start:\n    HOSTIO_MAP r9\n    li r3, 7\n    HOSTIO_DONE_WITH r3, r9\n    b .\n"
    )
    assert not (tmp_path / "link.ld").exists() and (PACKAGE_DIR / "hostio.inc").exists()
    vm = EmulatedBookeVm()
    vm.load_elf(build(src, tmp_path))
    v = vm.vcpus[0]
    assert v.run() == KVM_EXIT_MMIO
    assert L.field("struct kvm_run", "mmio", "phys_addr").get(v.kvm_run) == board.HOSTIO_DONE


def test_the_shipped_demo_guest_runs_and_handles_its_own_traps(core: str) -> None:
    from guestdbg_booke.guests.build import PACKAGE_DIR

    from .machine import BUILD, symbols

    elf = build(PACKAGE_DIR / "demo.S", BUILD)
    vm = EmulatedBookeVm(core)
    vm.load_elf(elf)
    v = vm.vcpus[0]
    rounds = []
    for _ in range(6):
        assert v.run() == KVM_EXIT_MMIO
        rounds.append(int.from_bytes(bytes(v.kvm_run[40:44]), "big"))
    sym = symbols(elf)
    assert rounds == [1, 2, 3, 4, 5, 6]
    assert int.from_bytes(vm.read_phys(sym["total"], 4), "big") == 5050
    assert int.from_bytes(vm.read_phys(sym["traps"], 4), "big") == 2
