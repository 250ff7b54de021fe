"""Read-only memory slots on the emulated x86-64 host: the scenario of
``tests/guests/x86/read_only_slots.py``, whose real-``/dev/kvm`` half in
``tests/test_real_kvm.py`` must give the same outcome (docs/reference/kvm-debug-abi.md §11.2).
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable

import pytest
from guests.x86 import long_mode, read_only_slots
from guests.x86.read_only_slots import PAGE, VALUE, Exit, Outcome

from guestdbg.kvm import constants as C
from guestdbg.vcpu import MemorySlotsHandle
from guestdbg_x86 import abi
from guestdbg_x86.emuhost.vm import EmuX86Vm

LAYOUT = abi.layout()
SCENARIOS = ("store over its own code", "store straddling RAM and the read-only page", "load")


@pytest.fixture(scope="module")
def long_mode_elf(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return long_mode.build(tmp_path_factory.mktemp("long_mode"))


def scenario(name: str, sym: dict[str, int]) -> tuple[str, int]:
    """(entry symbol, RBX) of a scenario; the read-only page is always ``store_rbx``'s."""
    page = sym["store_rbx"] & ~(PAGE - 1)
    return {
        "store over its own code": ("store_rbx", sym["store_rbx_next"]),
        "store straddling RAM and the read-only page": ("store_rbx", page - 4),
        "load": ("load_rbx", sym["store_rbx"]),
    }[name]


def run_emulated(elf: pathlib.Path, name: str) -> tuple[Outcome, dict[str, int], bytes]:
    """The scenario on a fresh emulated VM: (outcome, symbols, memory around RBX before)."""
    vm = EmuX86Vm(long_mode.RAM_SIZE)
    assert isinstance(vm, MemorySlotsHandle)
    sym = long_mode.load(vm, elf)  # type: ignore[arg-type]
    vcpu = vm.vcpus[0]
    long_mode.enter_long_mode(vcpu, LAYOUT, sym)  # type: ignore[arg-type]
    entry, rbx = scenario(name, sym)
    read_only_slots.split_read_only(vm, sym["store_rbx"] & ~(PAGE - 1))
    before = vm.read_phys(rbx - 8, 16)
    timer = threading.Timer(10.0, vcpu.kick)
    timer.start()
    try:
        outcome = read_only_slots.run(vm, vcpu, LAYOUT, sym, entry, rbx)
    finally:
        timer.cancel()
    return outcome, sym, before


Runner = Callable[[pathlib.Path, str], tuple[Outcome, dict[str, int], bytes]]


def expected(name: str, sym: dict[str, int], before: bytes) -> Outcome:
    """What x86 KVM does (docs/reference/kvm-debug-abi.md §11.2, measured on this machine's
    kernel by the real half): a store into the read-only page exits as MMIO with RIP past it
    and the page unchanged, the RAM part of a straddling store is written, a load does not
    exit."""
    value = VALUE.to_bytes(8, "little")
    _, rbx = scenario(name, sym)
    if name == "load":
        return Outcome((Exit(C.KVM_EXIT_HLT, sym["load_rbx_next"] + 1),), int.from_bytes(
            before[8:], "little"), before)  # fmt: skip
    nxt = sym["store_rbx_next"]
    if name == "store over its own code":
        mmio = (rbx, 8, 1, value)
        after = before
    else:
        mmio = (rbx + 4, 4, 1, value[4:])
        after = before[:8] + value[:4] + before[12:]
    exits = (Exit(C.KVM_EXIT_MMIO, nxt, mmio), Exit(C.KVM_EXIT_HLT, nxt + 1))
    return Outcome(exits, VALUE, after)


@pytest.mark.parametrize("name", SCENARIOS)
def test_read_only_slot_scenario_on_the_emulated_host(
    long_mode_elf: pathlib.Path, name: str
) -> None:
    outcome, sym, before = run_emulated(long_mode_elf, name)
    assert outcome == expected(name, sym, before)


def test_the_emulated_host_offers_read_only_slots_as_x86_kvm_does() -> None:
    vm = EmuX86Vm(long_mode.RAM_SIZE)
    assert vm.check_extension(C.KVM_CAP_READONLY_MEM) == 1
