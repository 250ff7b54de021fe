"""The /dev/kvm layer against this machine's real KVM: an x86-64 guest in long mode at CPL0.

Everything goes through :mod:`guestdbg.kvm.device` with the x86 plugin's layout (found through the
registry). The guest is ``tests/guests/x86/long_mode.S``, built by GNU as/ld for this run and loaded
from its ELF; addresses come from its symbols. What is asserted is what a kvm_pvm host (this
machine, docs/reference/this-machine-kvm.md) and a VMX/SVM host both do for emulated CPL0 code:
single-step, execute breakpoints in DR0-3, and exception injection through KVM_SET_VCPU_EVENTS.
Software breakpoints and watchpoints are not exercised: kvm_pvm cannot deliver them.

Every KVM_RUN is guarded by a SIGALRM watchdog (independent of the kick under test), so a hung
emulation fails the test instead of hanging the suite. Without a usable /dev/kvm the module is
skipped, saying why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import signal
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from guests.x86 import long_mode, read_only_slots
from guests.x86.long_mode import CODE64_SELECTOR, DATA_SELECTOR, RAM_SIZE
from x86 import test_read_only_slots as x86_read_only

from guestdbg import plugins
from guestdbg.emuhost.image import read_elf
from guestdbg.errors import (
    BadAddress,
    InvalidRequest,
    KernelError,
    NotStopped,
    UnsupportedByArch,
)
from guestdbg.kvm import constants as C
from guestdbg.kvm.device import (
    Kvm,
    KvmEventsVcpu,
    KvmVm,
    machine_kvm_arch,
    unusable_reason,
)
from guestdbg.kvm.uapi import AbiLayout
from guestdbg.vcpu import MemorySlotsHandle, SlotInfo, VcpuEventsHandle, VcpuHandle, VmHandle

pytestmark = pytest.mark.realkvm

RUN_TIMEOUT = 5.0  # seconds; generous: kvm_pvm runs CPL0 code in KVM's instruction emulator

LAYOUT: AbiLayout = plugins.load().arches["x86"].layout()
KVM_GUESTDBG_USE_HW_BP = LAYOUT.arch.constants["KVM_GUESTDBG_USE_HW_BP"]
KVM_GUESTDBG_INJECT_BP = LAYOUT.arch.constants["KVM_GUESTDBG_INJECT_BP"]

# x86 facts (SDM vol. 3 ch. 6 and 17; docs/reference/kvm-debug-abi.md §7)
DB_VECTOR, BP_VECTOR = 1, 3
DR6_BS = 0x4000
DR6_B0 = 0x1
DR7_L0 = 0x1
DR7_FIXED_1 = 0x400


def _skip_reason() -> str | None:
    if machine_kvm_arch() != "x86_64":
        return f"the smoke-test guest is x86-64; this machine is {machine_kvm_arch()}"
    return unusable_reason(LAYOUT)


_REASON = _skip_reason()
if _REASON is not None:
    pytest.skip(_REASON, allow_module_level=True)


@contextlib.contextmanager
def watchdog(seconds: float = RUN_TIMEOUT) -> Iterator[list[int]]:
    """SIGALRM after ``seconds``: a KVM_RUN on this (the main) thread returns EINTR.

    Independent of :meth:`KvmVcpu.kick`, so it also guards the tests of kick itself; the list
    it yields is non-empty once it fired."""
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Guest:
    kvm: Kvm
    vm: KvmVm
    vcpu: KvmEventsVcpu
    sym: dict[str, int]

    def regs(self, name: str) -> int:
        return LAYOUT.field("struct kvm_regs", name).get(self.vcpu.get_regs())

    def start_at(self, symbol: str) -> None:
        long_mode.start_at(self.vcpu, LAYOUT, self.sym, symbol)

    def guest_debug(self, control: int, debugreg: dict[int, int] | None = None) -> None:
        dbg = LAYOUT.new("struct kvm_guest_debug")
        LAYOUT.field("struct kvm_guest_debug", "control").put(dbg, control)
        for n, value in (debugreg or {}).items():
            LAYOUT.field("struct kvm_guest_debug", "arch", "debugreg", n).put(dbg, value)
        self.vcpu.set_guest_debug(bytes(dbg))

    def run(self) -> int:
        """One KVM_RUN that cannot hang: the watchdog interrupts it if the guest does not exit."""
        with watchdog() as fired:
            reason = self.vcpu.run()
        assert not fired and reason != C.KVM_EXIT_INTR, f"no exit in {RUN_TIMEOUT}s: guest hung"
        return reason

    def debug_exit(self) -> tuple[int, int, int]:
        """(exception, pc, dr6) of the last KVM_EXIT_DEBUG. dr7 is not read: kvm_pvm reports 0."""
        run = self.vcpu.kvm_run
        field = LAYOUT.field
        return (
            field("struct kvm_run", "debug", "arch", "exception").get(run),
            field("struct kvm_run", "debug", "arch", "pc").get(run),
            field("struct kvm_run", "debug", "arch", "dr6").get(run),
        )


@pytest.fixture(scope="module")
def guest_elf(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return long_mode.build(tmp_path_factory.mktemp("x86_guest"))


@pytest.fixture
def guest(guest_elf: pathlib.Path) -> Iterator[Guest]:
    with Kvm(LAYOUT) as kvm:
        vm = kvm.create_vm()
        vm.add_memory(0, RAM_SIZE)
        sym = long_mode.load(vm, guest_elf)
        vcpu = vm.create_vcpu()
        assert isinstance(vcpu, KvmEventsVcpu)  # x86 has KVM_GET/SET_VCPU_EVENTS
        long_mode.enter_long_mode(vcpu, LAYOUT, sym)
        yield Guest(kvm, vm, vcpu, sym)


def test_device_objects_implement_the_vcpu_interface(guest: Guest) -> None:
    assert isinstance(guest.vm, VmHandle)
    assert isinstance(guest.vm, MemorySlotsHandle)
    assert isinstance(guest.vcpu, VcpuHandle)
    assert isinstance(guest.vcpu, VcpuEventsHandle)
    assert guest.vm.vcpus == [guest.vcpu]
    assert guest.vm.layout is LAYOUT
    assert guest.kvm.api_version == C.KVM_API_VERSION
    assert guest.vm.check_extension(C.KVM_CAP_SET_GUEST_DEBUG) > 0


def test_single_step_exits_with_db_and_the_pc_of_each_next_instruction(guest: Guest) -> None:
    """x86.c kvm_vcpu_do_singlestep: exception #DB, pc = next RIP, dr6 = BS | active-low."""
    guest.start_at("step_start")
    guest.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    for label in ("step_1", "step_2", "step_3", "step_4"):
        assert guest.run() == C.KVM_EXIT_DEBUG
        exception, pc, dr6 = guest.debug_exit()
        assert (exception, pc) == (DB_VECTOR, guest.sym[label])
        assert dr6 & DR6_BS
        assert guest.regs("rip") == guest.sym[label]
    assert guest.regs("rax") == 2  # both inc ran, once each
    guest.guest_debug(0)
    assert guest.run() == C.KVM_EXIT_HLT
    assert guest.regs("rip") == guest.sym["step_end"]


def test_execute_breakpoint_in_dr0_stops_before_the_instruction(guest: Guest) -> None:
    """x86.c kvm_vcpu_check_code_breakpoint: #DB with DR6.B0 and pc = the breakpoint address."""
    guest.start_at("hw_bp_start")
    target = guest.sym["hw_bp_target"]
    enable = C.KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP
    guest.guest_debug(enable, {0: target, 7: DR7_FIXED_1 | DR7_L0})
    assert guest.run() == C.KVM_EXIT_DEBUG
    exception, pc, dr6 = guest.debug_exit()
    assert (exception, pc) == (DB_VECTOR, target)
    assert dr6 & 0xF == DR6_B0
    assert not dr6 & DR6_BS
    assert guest.regs("rax") == 1  # the inc before ran, the one at the breakpoint did not
    # RF is not honoured on kvm_pvm: step over with the breakpoint disarmed, then re-arm
    guest.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    assert guest.run() == C.KVM_EXIT_DEBUG
    assert guest.debug_exit()[1] == guest.sym["hw_bp_next"]
    guest.guest_debug(enable, {0: target, 7: DR7_FIXED_1 | DR7_L0})
    assert guest.run() == C.KVM_EXIT_HLT
    assert guest.regs("rax") == 2


def test_registers_read_after_an_exit_are_the_kernels_whether_copied_or_asked(
    guest: Guest,
) -> None:
    """With KVM_CAP_SYNC_REGS get_regs reads the copy the kernel leaves in kvm_run: it must be
    what KVM_GET_REGS answers after every exit, after a register write and after a kick."""
    import fcntl

    def asked() -> bytearray:
        buf = LAYOUT.new("struct kvm_regs")
        fcntl.ioctl(guest.vcpu.fd, LAYOUT.ioctls["KVM_GET_REGS"], buf)
        return buf

    guest.start_at("step_start")
    guest.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    for label in ("step_1", "step_2", "step_3"):
        assert guest.run() == C.KVM_EXIT_DEBUG
        assert guest.vcpu.get_regs() == asked()
        assert guest.regs("rip") == guest.sym[label]
    regs = guest.vcpu.get_regs()
    LAYOUT.field("struct kvm_regs", "rax").put(regs, 0x1234)
    guest.vcpu.set_regs(bytes(regs))
    assert guest.regs("rax") == 0x1234  # the write, not the copy of the last exit
    assert guest.run() == C.KVM_EXIT_DEBUG
    assert guest.vcpu.get_regs() == asked()
    guest.vcpu.kick()  # immediate_exit: the next run returns at once, nothing runs
    with watchdog():
        assert guest.vcpu.run() == C.KVM_EXIT_INTR
    assert guest.vcpu.get_regs() == asked()
    assert guest.regs("rip") == guest.sym["step_4"]


def test_sregs_and_events_read_after_an_exit_are_the_kernels(guest: Guest) -> None:
    """With KVM_SYNC_X86_SREGS and _EVENTS the copies in kvm_run stand in for KVM_GET_SREGS and
    KVM_GET_VCPU_EVENTS after an exit: they must be what the ioctls answer, and a write makes
    the next read ask the kernel."""
    import fcntl

    def asked(name: str, ctype: str) -> bytearray:
        buf = LAYOUT.new(ctype)
        fcntl.ioctl(guest.vcpu.fd, LAYOUT.ioctls[name], buf)
        return buf

    guest.start_at("step_start")
    guest.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    assert guest.run() == C.KVM_EXIT_DEBUG
    assert guest.vcpu.get_sregs() == asked("KVM_GET_SREGS", "struct kvm_sregs")
    events = guest.vcpu.get_vcpu_events()
    assert events == asked("KVM_GET_VCPU_EVENTS", "struct kvm_vcpu_events")
    LAYOUT.field("struct kvm_vcpu_events", "interrupt", "shadow").put(events, 1)
    flags = LAYOUT.field("struct kvm_vcpu_events", "flags")
    flags.put(events, 0x4)  # KVM_VCPUEVENT_VALID_SHADOW
    guest.vcpu.set_vcpu_events(bytes(events))
    assert (
        LAYOUT.field("struct kvm_vcpu_events", "interrupt", "shadow").get(
            guest.vcpu.get_vcpu_events()
        )
        == 1
    )  # the write, not the copy of the last exit


def test_registers_deferred_to_the_next_run_are_what_every_path_sees(guest: Guest) -> None:
    """``set_regs_at_run`` writes kvm_run's copy with the dirty bit instead of KVM_SET_REGS:
    the next KVM_RUN starts from them, get_regs returns them on any thread until then, and any
    other ioctl (here KVM_GET_SREGS, then a raw KVM_GET_REGS) finds them already in the
    kernel; a KVM_SET_REGS after them wins."""
    import fcntl

    def asked() -> bytearray:
        buf = LAYOUT.new("struct kvm_regs")
        fcntl.ioctl(guest.vcpu.fd, LAYOUT.ioctls["KVM_GET_REGS"], buf)
        return buf

    rax = LAYOUT.field("struct kvm_regs", "rax")
    rip = LAYOUT.field("struct kvm_regs", "rip")
    guest.start_at("step_start")
    guest.guest_debug(C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP)
    assert guest.run() == C.KVM_EXIT_DEBUG  # at step_1: inc %rax
    regs = guest.vcpu.get_regs()
    rax.put(regs, 0x40)
    guest.vcpu.set_regs_at_run(bytes(regs))
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(rax.get(guest.vcpu.get_regs())))
    reader.start()
    reader.join()
    assert seen == [0x40]  # another thread (a GDB server's register read) sees them
    assert rax.get(asked()) != 0x40  # not in the kernel yet: no ioctl was made
    assert guest.run() == C.KVM_EXIT_DEBUG  # the run started from them
    assert guest.regs("rax") == 0x41 and rax.get(asked()) == 0x41
    # another ioctl first: the deferred write reaches the kernel before it
    regs = guest.vcpu.get_regs()
    rax.put(regs, 0x80)
    guest.vcpu.set_regs_at_run(bytes(regs))
    guest.vcpu.get_sregs()
    assert rax.get(asked()) == 0x80
    assert guest.run() == C.KVM_EXIT_DEBUG
    assert guest.regs("rax") == 0x81
    # a KVM_SET_REGS after a deferred write replaces it
    regs = guest.vcpu.get_regs()
    rax.put(regs, 0x100)
    guest.vcpu.set_regs_at_run(bytes(regs))
    rax.put(regs, 0x200)
    rip.put(regs, guest.sym["step_3"])
    guest.vcpu.set_regs(bytes(regs))
    assert guest.regs("rax") == 0x200
    assert guest.run() == C.KVM_EXIT_DEBUG
    assert guest.regs("rax") == 0x200 and guest.regs("rip") == guest.sym["step_4"]
    # a run that is kicked before it starts still starts from them
    regs = guest.vcpu.get_regs()
    rax.put(regs, 0x300)
    guest.vcpu.set_regs_at_run(bytes(regs))
    guest.vcpu.kick()
    with watchdog():
        assert guest.vcpu.run() == C.KVM_EXIT_INTR
    assert guest.regs("rax") == 0x300 and rax.get(asked()) == 0x300


def test_guest_ram_reads_follow_the_slot_table(guest: Guest) -> None:
    """A read keeps a view of its slot (guestdbg.kvm.memory): after the slot is deleted the same
    read is BadAddress, and after it is back it reads the memory again."""
    vm = guest.vm
    assert isinstance(vm, MemorySlotsHandle)
    before = vm.read_phys(0x10000, 16)
    (slot,) = vm.memory_slots()
    vm.set_memory_slot(SlotInfo(slot.slot, slot.flags, slot.gpa, 0, slot.userspace_addr))
    with pytest.raises(BadAddress):
        vm.read_phys(0x10000, 16)
    vm.set_memory_slot(slot)
    assert vm.read_phys(0x10000, 16) == before


def test_injected_bp_runs_the_guests_own_vector_3_handler(guest: Guest) -> None:
    """KVM_SET_VCPU_EVENTS exception.injected: delivered through the guest's IDT on entry."""
    guest.start_at("step_start")
    guest.guest_debug(0)
    events = guest.vcpu.get_vcpu_events()
    LAYOUT.field("struct kvm_vcpu_events", "exception", "injected").put(events, 1)
    LAYOUT.field("struct kvm_vcpu_events", "exception", "nr").put(events, BP_VECTOR)
    guest.vcpu.set_vcpu_events(bytes(events))
    assert guest.run() == C.KVM_EXIT_HLT
    assert guest.regs("rax") == 0xDEAD0000 + BP_VECTOR
    assert guest.regs("rip") == guest.sym["vector_3_halted"]
    # the interrupt frame the CPU pushed: RIP, CS, RFLAGS, RSP, SS of the interrupted code
    frame = struct.unpack("<5Q", guest.vm.read_phys(guest.regs("rsp"), 40))
    assert frame == (
        guest.sym["step_start"],
        CODE64_SELECTOR,
        2,
        guest.sym["stack_top"],
        DATA_SELECTOR,
    )


def test_kick_from_another_thread_ends_a_spinning_run(guest: Guest) -> None:
    guest.start_at("spin")
    kicker = threading.Timer(0.05, guest.vcpu.kick)
    with watchdog() as fired:
        kicker.start()
        assert guest.vcpu.run() == C.KVM_EXIT_INTR
    kicker.join()
    assert not fired, "the watchdog, not the kick, ended KVM_RUN"
    assert LAYOUT.field("struct kvm_run", "exit_reason").get(guest.vcpu.kvm_run) == C.KVM_EXIT_INTR
    # a kick before the run makes the next run return at once (immediate_exit) ...
    guest.vcpu.kick()
    with watchdog() as fired:
        assert guest.vcpu.run() == C.KVM_EXIT_INTR
    assert not fired
    # ... and is consumed by it: the run after that goes ahead
    guest.start_at("step_start")
    assert guest.run() == C.KVM_EXIT_HLT


def test_two_vcpus_are_in_kvm_run_at_once(guest: Guest) -> None:
    """KVM_RUN releases the GIL: one vCPU spins in its thread while another runs to HLT here."""
    spinner = guest.vm.create_vcpu()
    long_mode.enter_long_mode(spinner, LAYOUT, guest.sym)
    long_mode.start_at(spinner, LAYOUT, guest.sym, "spin")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(spinner.run()), daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if spinner.in_run:
                break
            time.sleep(0.01)
        assert spinner.in_run
        guest.start_at("step_start")
        assert guest.run() == C.KVM_EXIT_HLT
        assert spinner.in_run, "the spinning vCPU left KVM_RUN without being kicked"
    finally:
        spinner.kick()
        thread.join(RUN_TIMEOUT)
    assert result == [C.KVM_EXIT_INTR]


@pytest.mark.parametrize("ioctl", ["KVM_GET_ONE_REG", "KVM_SET_ONE_REG"])
def test_bad_one_reg_id_is_a_kernel_error_naming_ioctl_and_errno(guest: Guest, ioctl: str) -> None:
    unknown = C.KVM_REG_X86 | C.KVM_REG_SIZE_U64 | 0xFFFF
    with pytest.raises(KernelError) as info:
        if ioctl == "KVM_GET_ONE_REG":
            guest.vcpu.get_one_reg(unknown)
        else:
            guest.vcpu.set_one_reg(unknown, 1)
    assert info.value.ioctl == ioctl
    name = errno.errorcode[info.value.errno]
    assert str(info.value).startswith(f"{ioctl} failed: {name} (")


def test_second_pending_injection_is_refused_with_ebusy(guest: Guest) -> None:
    """x86.c kvm_arch_vcpu_ioctl_set_guest_debug: INJECT_BP while an exception is queued."""
    inject = C.KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_BP
    guest.guest_debug(inject)
    with pytest.raises(KernelError) as info:
        guest.guest_debug(inject)
    assert (info.value.ioctl, info.value.errno) == ("KVM_SET_GUEST_DEBUG", errno.EBUSY)
    assert "KVM_SET_GUEST_DEBUG failed: EBUSY" in str(info.value)


def test_debugregs_with_flags_are_refused_and_round_trip_without(guest: Guest) -> None:
    regs = LAYOUT.new("struct kvm_debugregs")
    LAYOUT.field("struct kvm_debugregs", "db", 0).put(regs, guest.sym["hw_bp_target"])
    LAYOUT.field("struct kvm_debugregs", "flags").put(regs, 1)  # api.rst 4.34: must be 0
    with pytest.raises(KernelError, match="KVM_SET_DEBUGREGS failed: EINVAL"):
        guest.vcpu.set_debugregs(bytes(regs))
    LAYOUT.field("struct kvm_debugregs", "flags").put(regs, 0)
    guest.vcpu.set_debugregs(bytes(regs))
    back = guest.vcpu.get_debugregs()
    assert LAYOUT.field("struct kvm_debugregs", "db", 0).get(back) == guest.sym["hw_bp_target"]


def test_translate_follows_the_guest_page_tables(guest: Guest) -> None:
    assert guest.vcpu.translate(guest.sym["step_start"]) == guest.sym["step_start"]
    assert guest.vcpu.translate(RAM_SIZE) is None  # past the one 2 MiB page


def test_guest_memory_outside_every_slot_is_a_bad_address_and_nothing_changes(
    guest: Guest,
) -> None:
    tail = guest.vm.read_phys(RAM_SIZE - 4, 4)
    with pytest.raises(BadAddress):
        guest.vm.write_phys(RAM_SIZE - 4, b"\xff" * 8)
    assert guest.vm.read_phys(RAM_SIZE - 4, 4) == tail
    with pytest.raises(BadAddress):
        guest.vm.read_phys(RAM_SIZE, 1)


def test_memory_slots_refuse_overlap_and_reads_span_adjacent_slots(guest: Guest) -> None:
    with pytest.raises(InvalidRequest, match="overlaps memory slot 0"):
        guest.vm.add_memory(RAM_SIZE - 4096, 8192)
    with pytest.raises(KernelError) as info:  # kvm_main.c check_memory_region_flags
        guest.vm.add_memory(RAM_SIZE, 4096, flags=0x80)
    assert (info.value.ioctl, info.value.errno) == ("KVM_SET_USER_MEMORY_REGION", errno.EINVAL)
    assert len(guest.vm.slots) == 1  # nothing half-added
    second = guest.vm.add_memory(RAM_SIZE, 4096)
    assert (second.slot, second.gpa) == (1, RAM_SIZE)
    guest.vm.write_phys(RAM_SIZE - 2, b"abcd")
    assert guest.vm.read_phys(RAM_SIZE - 2, 4) == b"abcd"
    assert guest.vm.read_phys(RAM_SIZE, 2) == b"cd"


def test_guest_rewriting_code_in_a_read_only_slot_exits_as_mmio_and_the_code_stays(
    guest_elf: pathlib.Path,
) -> None:
    """docs/reference/kvm-debug-abi.md §11: the x86 kernel offers read-only slots. The page
    holding ``store_rbx`` gets a read-only slot of its own; the guest runs code from it, and its
    store over its own next instruction leaves KVM_RUN as KVM_EXIT_MMIO carrying the store. The
    page keeps its bytes (the VMM loaded them through its own mapping), so the next KVM_RUN
    executes the original ``hlt``."""
    page = 0x1000
    sym = dict(read_elf(guest_elf).symbols)
    code_page = sym["store_rbx"] & ~(page - 1)
    target = sym["store_rbx_next"]
    value = 0x1122334455667788
    with Kvm(LAYOUT) as kvm:
        assert kvm.check_extension(C.KVM_CAP_READONLY_MEM) == 1
        vm = kvm.create_vm()
        vm.add_memory(0, code_page)
        slot = vm.add_memory(code_page, page, flags=C.KVM_MEM_READONLY)
        vm.add_memory(code_page + page, RAM_SIZE - code_page - page)
        assert slot.flags == C.KVM_MEM_READONLY
        assert long_mode.load(vm, guest_elf) == sym
        original = vm.read_phys(target, 8)
        vcpu = vm.create_vcpu()
        assert isinstance(vcpu, KvmEventsVcpu)
        long_mode.enter_long_mode(vcpu, LAYOUT, sym)
        g = Guest(kvm, vm, vcpu, sym)
        g.start_at("store_rbx")
        regs = vcpu.get_regs()
        LAYOUT.field("struct kvm_regs", "rax").put(regs, value)
        LAYOUT.field("struct kvm_regs", "rbx").put(regs, target)
        vcpu.set_regs(bytes(regs))
        assert g.run() == C.KVM_EXIT_MMIO
        run = vcpu.kvm_run

        def mmio(*path: str | int) -> int:
            return LAYOUT.field("struct kvm_run", "mmio", *path).get(run)

        assert (mmio("phys_addr"), mmio("len"), mmio("is_write")) == (target, 8, 1)
        assert bytes(mmio("data", i) for i in range(8)) == value.to_bytes(8, "little")
        assert vm.read_phys(target, 8) == original
        assert g.regs("rip") == target
        assert g.run() == C.KVM_EXIT_HLT
        assert g.regs("rip") == target + 1


@pytest.mark.parametrize("name", x86_read_only.SCENARIOS)
def test_read_only_slot_scenario_matches_the_emulated_host(
    guest_elf: pathlib.Path, name: str
) -> None:
    """Differential (docs/reference/kvm-debug-abi.md §11.2): the slot split made through
    ``set_memory_slot`` alone, then a store over the guest's own code, a store straddling a RAM
    page and the read-only page, or a load from it, on this kernel and on the emulated host:
    the same exits (reason, RIP, mmio fields), registers and memory."""
    with Kvm(LAYOUT) as kvm:
        vm = kvm.create_vm()
        vm.add_memory(0, RAM_SIZE)
        sym = long_mode.load(vm, guest_elf)
        vcpu = vm.create_vcpu()
        long_mode.enter_long_mode(vcpu, LAYOUT, sym)
        entry, rbx = x86_read_only.scenario(name, sym)
        slots = read_only_slots.split_read_only(vm, sym["store_rbx"] & ~0xFFF)
        assert [s.flags for s in slots] == [0, C.KVM_MEM_READONLY, 0]
        before = vm.read_phys(rbx - 8, 16)
        with watchdog():
            real = read_only_slots.run(vm, vcpu, LAYOUT, sym, entry, rbx)
    emulated, _, emulated_before = x86_read_only.run_emulated(guest_elf, name)
    assert before == emulated_before
    assert real == x86_read_only.expected(name, sym, before)
    assert emulated == real


def _refusal(vm: KvmVm, info: SlotInfo) -> int:
    before = vm.memory_slots()
    with pytest.raises(KernelError) as e:
        vm.set_memory_slot(info)
    assert e.value.ioctl == "KVM_SET_USER_MEMORY_REGION"
    assert vm.memory_slots() == before
    return e.value.errno


def test_set_memory_slot_refusals_are_the_kernels_and_change_nothing(guest: Guest) -> None:
    """kvm_main.c ``__kvm_set_memory_region`` and ``check_memory_region_flags``, measured: the
    same errnos ``tests/foundation/test_memory_and_image.py`` expects of the emulated model."""
    vm = guest.vm
    (ram,) = vm.memory_slots()
    base, page = ram.userspace_addr, 0x1000
    far = RAM_SIZE + 0x100000
    assert _refusal(vm, SlotInfo(1, 0, RAM_SIZE - page, page, base)) == errno.EEXIST
    assert _refusal(vm, SlotInfo(0, C.KVM_MEM_READONLY, 0, RAM_SIZE, base)) == errno.EINVAL
    assert _refusal(vm, SlotInfo(0, 0, 0, RAM_SIZE // 2, base)) == errno.EINVAL
    assert _refusal(vm, SlotInfo(1, 0, far + 8, page, base)) == errno.EINVAL
    assert _refusal(vm, SlotInfo(1, 0, far, page, base + 8)) == errno.EINVAL
    assert _refusal(vm, SlotInfo(1, 0x80, far, page, base)) == errno.EINVAL
    assert _refusal(vm, SlotInfo(5, 0, 0, 0, 0)) == errno.EINVAL
    assert _refusal(vm, SlotInfo(40000, 0, far, page, base)) == errno.EINVAL
    before = vm.memory_slots()
    for outside in (
        SlotInfo(1, 0, far, 2 * page, base + RAM_SIZE - page),
        SlotInfo(1, 0, far, page, 0x1000),
    ):
        with pytest.raises(InvalidRequest, match="not inside one host mapping"):
            vm.set_memory_slot(outside)
    assert vm.memory_slots() == before


def test_read_and_write_phys_span_a_split_slot_and_deletion_keeps_the_mapping(
    guest: Guest,
) -> None:
    vm = guest.vm
    page = 0x1000
    split = 0x40000
    vm.write_phys(split - 4, b"abcdefgh")
    read_only_slots.split_read_only(vm, split)
    assert vm.read_phys(split - 4, 8) == b"abcdefgh"  # across RAM, read-only, by the VMM
    vm.write_phys(split + page - 2, b"WXYZ")  # the VMM writes through a read-only slot
    assert vm.read_phys(split + page - 2, 4) == b"WXYZ"
    ro = vm.memory_slots()[1]
    vm.set_memory_slot(SlotInfo(ro.slot, ro.flags, ro.gpa, 0, ro.userspace_addr))
    with pytest.raises(BadAddress):
        vm.read_phys(split, 1)
    vm.set_memory_slot(SlotInfo(ro.slot, 0, ro.gpa, ro.size, ro.userspace_addr))
    assert vm.read_phys(split - 4, 8) == b"abcdefgh"  # the mapping outlived the slot


def test_reads_on_another_thread_go_on_while_the_slot_table_changes(guest: Guest) -> None:
    """A session reads guest RAM on vCPU threads (page walks, conditions) while the VMM or the
    write guard changes slots: a read must return the bytes or raise BadAddress for a range
    that has left the table, never fail on memory the slot change did not unmap."""
    vm = guest.vm
    split = 0x40000
    vm.write_phys(0x2000, b"stable!!")
    read_only_slots.split_read_only(vm, split)
    ro = vm.memory_slots()[1]
    errors: list[BaseException] = []
    reads = [0]
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                assert vm.read_phys(0x2000, 8) == b"stable!!"
                with contextlib.suppress(BadAddress):  # the read-only slot may be deleted now
                    vm.read_phys(split, 8)
            except BaseException as e:  # the test reports whatever it was
                errors.append(e)
                return
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(100):
            vm.set_memory_slot(SlotInfo(ro.slot, ro.flags, ro.gpa, 0, ro.userspace_addr))
            vm.set_memory_slot(SlotInfo(ro.slot, ro.flags, ro.gpa, ro.size, ro.userspace_addr))
            time.sleep(0)
    finally:
        done.set()
        t.join()
    assert not errors, errors[0]
    assert reads[0] > 100


def test_enable_cap_reaches_the_vm_and_unknown_caps_are_refused(guest: Guest) -> None:
    if guest.vm.check_extension(C.KVM_CAP_EXCEPTION_PAYLOAD):
        guest.vm.enable_cap(C.KVM_CAP_EXCEPTION_PAYLOAD, 1)
    with pytest.raises(KernelError) as info:
        guest.vm.enable_cap(0xFFFF, 1)
    assert (info.value.ioctl, info.value.errno) == ("KVM_ENABLE_CAP", errno.EINVAL)
    with pytest.raises(InvalidRequest):
        guest.vm.enable_cap(C.KVM_CAP_EXCEPTION_PAYLOAD, 1, 2, 3, 4, 5)


def test_closing_a_vm_whose_vcpu_is_running_is_refused_and_closes_nothing(guest: Guest) -> None:
    guest.start_at("spin")
    thread = threading.Thread(target=guest.vcpu.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if guest.vcpu.in_run:
                break
            time.sleep(0.01)
        with pytest.raises(NotStopped):
            guest.kvm.close()
        assert guest.vcpu.fd >= 0 and guest.vm.fd >= 0
    finally:
        guest.vcpu.kick()
        thread.join(RUN_TIMEOUT)
    assert not thread.is_alive()


def test_wrong_sized_structure_is_refused_before_the_kernel_sees_it(guest: Guest) -> None:
    before = guest.vcpu.get_regs()
    with pytest.raises(InvalidRequest, match="KVM_SET_REGS takes 144 bytes, got 10"):
        guest.vcpu.set_regs(b"\0" * 10)
    assert guest.vcpu.get_regs() == before


def test_close_releases_every_fd(guest_elf: pathlib.Path) -> None:
    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    before = fds()
    kvm = Kvm(LAYOUT)
    vm = kvm.create_vm()
    vm.add_memory(0, RAM_SIZE)
    vcpu = vm.create_vcpu()
    view = vcpu.kvm_run
    assert fds() - before
    kvm.close()
    assert fds() == before
    assert view[:16] == bytes(16)  # a view kept past close reads zeros, it does not fault


def test_layout_of_another_arch_is_refused_without_opening_the_device() -> None:
    ppc = plugins.load().arches["ppc_booke"].layout()
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(UnsupportedByArch, match="powerpc"):
        Kvm(ppc)
    assert set(os.listdir("/proc/self/fd")) == before
