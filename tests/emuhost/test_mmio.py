"""Accesses outside RAM leave KVM_RUN as KVM_EXIT_MMIO (kvmppc_emulate_loadstore /
kvmppc_handle_load/store); a load's value from kvm_run is put in place at the next KVM_RUN
(kvmppc_complete_mmio_load). The PC and an update-form base register move at the exit."""

from __future__ import annotations

from guestdbg.kvm.constants import KVM_EXIT_MMIO
from guestdbg_booke.emuhost import HOSTIO_BASE, board

from .machine import RUN, L, Machine

ALSO_64BIT = True  # conftest: also on e5500/e6500, in 32-bit mode


def test_stores_exit_with_address_bytes_and_length_and_the_pc_past_the_store(core: str) -> None:
    m = Machine("mmio", core)
    got = []
    for name in ("st_b", "st_h", "st_w", "st_wbrx"):
        ex = m.run()
        assert (ex.reason, ex.mmio_write) == (KVM_EXIT_MMIO, True)
        assert m.pc == m.sym[name] + 4
        got.append((ex.mmio_addr - HOSTIO_BASE, ex.mmio_data))
    assert got == [
        (0x100, bytes.fromhex("44")),
        (0x102, bytes.fromhex("3344")),
        (0x104, bytes.fromhex("11223344")),
        (0x108, bytes.fromhex("44332211")),  # stwbrx: byte-reversed
    ]


def test_loads_take_the_vmms_data_at_the_next_run(core: str) -> None:
    m = Machine("mmio", core)
    for _ in range(4):
        m.run()
    data = L.offsetof(RUN, "mmio", "data")
    run = m.vcpu.kvm_run

    ex = m.run()  # lwz r10
    assert (ex.mmio_addr - HOSTIO_BASE, ex.mmio_write, len(ex.mmio_data)) == (0x110, False, 4)
    run[data : data + 4] = bytes.fromhex("cafebabe")
    ex = m.run()  # lha r11
    assert m.gpr(10) == 0xCAFEBABE
    run[data : data + 2] = bytes.fromhex("8001")
    ex = m.run()  # lwzu r13, 0x18(r12)
    # sign-extended into the register: 32 bits on e500mc/e500v2, 64 on e5500/e6500
    # (kvmppc_complete_mmio_load writes an unsigned long)
    assert m.gpr(11) == (-0x7FFF) & ((1 << board.WIDTH[core]) - 1)
    assert m.gpr(12) == HOSTIO_BASE + 0x118  # the update happened at the exit
    run[data : data + 4] = bytes.fromhex("01020304")
    ex = m.run()
    assert m.gpr(13) == 0x01020304
    assert (ex.mmio_addr, ex.mmio_word) == (HOSTIO_BASE, 0xCAFEBABE)
