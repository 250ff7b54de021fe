"""The emulated x86-64 host behaves as the kernel it models (x86.c, vmx.c) where guest
debugging can see it, behind the same interface as /dev/kvm.

Where kvm_pvm and VMX differ, the model follows VMX, the upstream kernel's hardware path: with
USE_HW_BP the host's DR0-3 replace the guest's (x86.c ``kvm_update_dr7``), whereas kvm_pvm's
emulator checks both (measured; docs/reference/this-machine-kvm.md).
"""

from __future__ import annotations

import errno
import pathlib
import subprocess
import threading
from collections.abc import Callable

import pytest

from guestdbg.errors import BadAddress, InvalidRequest, KernelError
from guestdbg.events import ResumeAction, StopKind
from guestdbg.kvm import constants as C
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session.session import Session
from guestdbg.vcpu import DebugRegsHandle, VcpuEventsHandle, VcpuHandle, VmHandle
from guestdbg_x86 import abi, boot
from guestdbg_x86.emuhost.factory import create_vm
from guestdbg_x86.emuhost.vm import EmuX86Vm

from . import machines
from .machines import Machine
from .sessions import STOP_TIMEOUT

Guests = Callable[[str], pathlib.Path]
EV = "struct kvm_vcpu_events"
DR6_ACTIVE_LOW = 0xFFFF0FF0
ENABLE = C.KVM_GUESTDBG_ENABLE


@pytest.fixture
def m(x86_guests: Guests) -> Machine:
    return machines.emulated(x86_guests("reinject"))


def _events(m: Machine, **values: int) -> bytes:
    ev = m.vcpu.get_vcpu_events()  # type: ignore[attr-defined]
    for path, value in values.items():
        machines.LAYOUT.field(EV, *path.split("__")).put(ev, value)
    return bytes(ev)


def test_emulated_objects_implement_the_vcpu_interface(m: Machine) -> None:
    assert isinstance(m.vm, VmHandle)
    assert isinstance(m.vcpu, VcpuHandle)
    assert isinstance(m.vcpu, VcpuEventsHandle)
    assert isinstance(m.vcpu, DebugRegsHandle)
    assert m.vm.layout is abi.layout()
    assert m.vm.check_extension(C.KVM_CAP_SET_GUEST_DEBUG) == 1
    assert m.reg("rip") == m.sym("start")  # halted at the ELF's entry point


def test_read_only_slots_are_offered_and_dirty_logging_is_not() -> None:
    """The x86 kernel has both (docs/reference/kvm-debug-abi.md §11); the model has read-only
    slots (KVM_CAP_READONLY_MEM 1, the flag accepted) and no dirty log, which it refuses as a
    kernel without it would: EINVAL, nothing added."""
    vm = EmuX86Vm(0x200000)
    assert vm.check_extension(C.KVM_CAP_READONLY_MEM) == 1
    memory = vm.memory
    before = memory.slots
    for flags in (C.KVM_MEM_LOG_DIRTY_PAGES, C.KVM_MEM_LOG_DIRTY_PAGES | C.KVM_MEM_READONLY):
        with pytest.raises(KernelError) as e:
            memory.add_slot(0x200000, 0x1000, flags=flags)
        assert (e.value.ioctl, e.value.errno) == ("KVM_SET_USER_MEMORY_REGION", errno.EINVAL)
    assert memory.slots == before
    assert len(memory.buffers) == 1  # the refused slot's buffer is not kept
    slot = memory.add_slot(0x200000, 0x1000, flags=C.KVM_MEM_READONLY)
    assert slot.read_only and vm.memory_slots()[-1].flags == C.KVM_MEM_READONLY


def test_valid_payload_needs_the_capability_enabled_and_nothing_changes(m: Machine) -> None:
    before = bytes(m.vcpu.get_vcpu_events())  # type: ignore[attr-defined]
    flags = abi.KVM_VCPUEVENT_VALID_PAYLOAD
    bad = _events(m, exception__pending=1, exception__nr=1, flags=flags)
    with pytest.raises(KernelError) as info:
        m.vcpu.set_vcpu_events(bad)  # type: ignore[attr-defined]
    assert (info.value.ioctl, info.value.errno) == ("KVM_SET_VCPU_EVENTS", errno.EINVAL)
    assert bytes(m.vcpu.get_vcpu_events()) == before  # type: ignore[attr-defined]
    m.vm.enable_cap(C.KVM_CAP_EXCEPTION_PAYLOAD, 1)
    m.vcpu.set_vcpu_events(bad)  # type: ignore[attr-defined]


@pytest.mark.parametrize("vector", [2, 32])
def test_nmi_or_a_vector_above_31_cannot_be_an_exception(m: Machine, vector: int) -> None:
    with pytest.raises(KernelError, match="EINVAL"):
        m.vcpu.set_vcpu_events(_events(m, exception__injected=1, exception__nr=vector))  # type: ignore[attr-defined]


def test_a_queued_soft_exception_is_not_reported_back(m: Machine) -> None:
    """x86.c: "The API doesn't provide the instruction length for software exceptions"."""
    m.vcpu.set_vcpu_events(_events(m, exception__injected=1, exception__nr=3))  # type: ignore[attr-defined]
    ev = m.vcpu.get_vcpu_events()  # type: ignore[attr-defined]
    assert machines.LAYOUT.field(EV, "exception", "injected").get(ev) == 0


def test_a_second_inject_bp_is_refused_with_ebusy(m: Machine) -> None:
    inject = ENABLE | abi.KVM_GUESTDBG_INJECT_BP
    m.guest_debug(inject)
    with pytest.raises(KernelError) as info:
        m.guest_debug(inject)
    assert (info.value.ioctl, info.value.errno) == ("KVM_SET_GUEST_DEBUG", errno.EBUSY)


@pytest.mark.parametrize(("field", "value"), [("flags", 1), ("dr7", 1 << 32), ("dr6", 1 << 40)])
def test_debugregs_with_flags_or_wide_dr6_dr7_are_refused(
    m: Machine, field: str, value: int
) -> None:
    regs = m.vcpu.get_debugregs()  # type: ignore[attr-defined]
    before = bytes(regs)
    machines.LAYOUT.field("struct kvm_debugregs", field).put(regs, value)
    with pytest.raises(KernelError, match="KVM_SET_DEBUGREGS failed: EINVAL"):
        m.vcpu.set_debugregs(bytes(regs))  # type: ignore[attr-defined]
    assert bytes(m.vcpu.get_debugregs()) == before  # type: ignore[attr-defined]


def _arm_guest_dr0(m: Machine, label: str) -> None:
    regs = m.vcpu.get_debugregs()  # type: ignore[attr-defined]
    machines.LAYOUT.field("struct kvm_debugregs", "db", 0).put(regs, m.sym(label))
    machines.LAYOUT.field("struct kvm_debugregs", "dr7").put(regs, 0x402)
    m.vcpu.set_debugregs(bytes(regs))  # type: ignore[attr-defined]


def test_the_guests_own_dr0_fires_into_the_guest_without_any_exit(m: Machine) -> None:
    """vmx handle_exception_nmi: without SINGLESTEP/USE_HW_BP the kernel queues the #DB to the
    guest itself (``kvm_queue_exception_p``) with its DR6 payload."""
    m.start_at("watch_start")
    _arm_guest_dr0(m, "watch_after_load")
    assert m.run() == C.KVM_EXIT_HLT
    assert m.u64("db_count") == 1
    assert m.u64("db_dr6") == DR6_ACTIVE_LOW | 0x1
    assert m.u64("db_frame_rip") == m.sym("watch_after_load")


def test_the_hosts_debug_registers_replace_the_guests_while_use_hw_bp_is_set(m: Machine) -> None:
    m.start_at("watch_start")
    _arm_guest_dr0(m, "watch_after_load")
    m.guest_debug(ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, {1: m.sym("watch_done"), 7: 0x408})
    assert m.run() == C.KVM_EXIT_DEBUG
    assert m.debug_exit() == (1, m.sym("watch_done"), DR6_ACTIVE_LOW | 0x2)
    assert m.u64("db_count") == 0  # the guest's DR0 was not in effect


def test_the_guests_int3_goes_to_its_handler_unless_use_sw_bp_is_set(m: Machine) -> None:
    m.start_at("bp_start")
    assert m.run() == C.KVM_EXIT_HLT
    assert (m.u64("bp_count"), m.u64("bp_frame_rip")) == (1, m.sym("bp_after_int3"))


def test_the_guests_single_step_goes_to_its_handler_without_host_debugging(m: Machine) -> None:
    m.start_at("tf_start")
    assert m.run() == C.KVM_EXIT_HLT
    assert m.u64("db_count") == 1
    assert m.u64("db_dr6") == DR6_ACTIVE_LOW | 0x4000


def test_a_write_to_other_bytes_of_a_watched_page_runs_on(m: Machine) -> None:
    """Page protection is only the trigger; the access must overlap the DRn bytes."""
    m.start_at("watch_start")
    m.guest_debug(
        ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, {0: m.sym("watched") + 8, 7: 0x000D0402}
    )  # 4-byte write watch just past the 4 bytes the guest stores
    assert m.run() == C.KVM_EXIT_HLT
    assert int.from_bytes(m.vm.read_phys(m.sym("watched"), 4), "little") == 0x1234


def test_a_kick_ends_a_spinning_run_and_a_kick_before_a_run_ends_it_at_once(m: Machine) -> None:
    m.start_at("spin")
    kicker = threading.Timer(0.05, m.vcpu.kick)
    kicker.start()
    assert m.vcpu.run() == C.KVM_EXIT_INTR
    kicker.join()
    m.vcpu.kick()
    assert m.vcpu.run() == C.KVM_EXIT_INTR
    m.start_at("bp_done")
    assert m.vcpu.run() == C.KVM_EXIT_HLT  # the kick was consumed


def test_translate_follows_the_guest_page_tables(m: Machine) -> None:
    assert m.vcpu.translate(m.sym("watched")) == m.sym("watched")
    assert m.vcpu.translate(1 << 40) is None


def test_a_guest_with_its_own_page_tables_and_gdt_boots_from_its_symbols(
    tmp_path: pathlib.Path,
) -> None:
    """long_mode.S (the real-KVM smoke guest) is linked at 0 and brings pml4, gdt and idt."""
    from guests.x86 import long_mode

    vm = create_vm(long_mode.build(tmp_path), ram_size=machines.RAM_SIZE)
    m = Machine("emulated", vm, boot.read_image(tmp_path / "long_mode.elf"))
    m.start_at("step_start")
    assert m.run() == C.KVM_EXIT_HLT
    assert (m.reg("rip"), m.reg("rax")) == (m.sym("step_end"), 2)


def test_an_image_over_the_loaders_tables_is_refused(tmp_path: pathlib.Path) -> None:
    obj, elf = tmp_path / "low.o", tmp_path / "low.elf"
    subprocess.run(["gcc", "-c", "-o", obj, machines.GUESTS / "debug_regs.S"], check=True)
    subprocess.run(["ld", "-N", "-Ttext=0x2000", "-e", "start", "-o", elf, obj], check=True)
    with pytest.raises(BadAddress, match="overlaps the loader's boot tables"):
        create_vm(elf, ram_size=machines.RAM_SIZE)


def test_an_image_for_another_machine_is_refused(tmp_path: pathlib.Path) -> None:
    src, obj = tmp_path / "ppc.s", tmp_path / "ppc.o"
    src.write_text("nop\n")
    subprocess.run(["powerpc-linux-gnu-as", "-o", obj, src], check=True)
    with pytest.raises(InvalidRequest, match="not an x86-64 ELF"):
        create_vm(obj, ram_size=machines.RAM_SIZE)


def test_two_vcpus_share_ram_and_a_stop_on_one_stops_the_other(x86_guests: Guests) -> None:
    """All-stop on the emulated host: vCPU 1 hits a trap word the VMM wrote into the RAM both
    vCPUs map, and vCPU 0, spinning, is kicked out of KVM_RUN."""
    elf = x86_guests("reinject")
    image = boot.read_image(elf)
    vm = create_vm(elf, 2, ram_size=machines.RAM_SIZE)
    spinner, worker = vm.vcpus
    boot.start_at(spinner, machines.LAYOUT, image["spin"], image["stack_top"])
    boot.start_at(worker, machines.LAYOUT, image["watch_start"], image["stack_top"] - 0x800)
    s = Session(vm, "x86")
    try:
        s.insert_point(DebugPoint(PointKind.SW_BREAK, image["watch_after_store"]))
        s.resume({0: ResumeAction(), 1: ResumeAction()})
        ev = s.wait_stop(STOP_TIMEOUT)
        assert ev is not None
        assert (ev.vcpu, ev.reason.kind, ev.reason.pc) == (
            1,
            StopKind.SW_BREAK,
            image["watch_after_store"],
        )
        rip = machines.LAYOUT.field("struct kvm_regs", "rip")
        assert rip.get(spinner.get_regs()) == image["spin"]  # stopped, still in its loop
    finally:
        s.close()
