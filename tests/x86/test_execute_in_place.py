"""The x86 plugin's ``execute_in_place``: what each instruction class does to the registers,
what the decoder refuses, and each condition under which the vCPU refuses
(:mod:`guestdbg_x86.in_place`).

A fake vCPU holds ``kvm_regs``, ``kvm_sregs``, ``kvm_vcpu_events`` and ``kvm_debugregs`` as
bytes, and guest RAM with page tables whose entries each test can change, so every refusal is
shown on its own. The hand-checked values here are illustrations; the checks against the real
CPU are in ``test_execute_differential.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from guestdbg_x86 import abi
from guestdbg_x86.execute import decode
from guestdbg_x86.guest_dregs import GuestDebugRegs
from guestdbg_x86.in_place import InPlace

LAY = abi.layout()
REGS = struct.Struct("<18Q")
KVM_NAMES = (
    *["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp"],
    *(f"r{n}" for n in range(8, 16)),
)
KVM_NAMES += ("rip", "rflags")
PML4, PDPT, PD, PT = 0x1000, 0x2000, 0x3000, 0x4000
CODE = 0x40000
"""In the first 2 MiB page."""
SMALL = 0x200000
"""4 KiB pages from here (PD entry 1 points at the table at PT)."""
P, W, U, A, PS = 0x1, 0x2, 0x4, 0x20, 0x80
NX = 1 << 63


class FakeVm:
    def __init__(self, nested: int = 0) -> None:
        self.ram = bytearray(4 << 20)
        self.nested = nested

    def read_phys(self, gpa: int, size: int) -> bytes:
        if gpa < 0 or gpa + size > len(self.ram):
            raise ValueError("outside RAM")
        return bytes(self.ram[gpa : gpa + size])

    def check_extension(self, cap: int) -> int:
        return self.nested

    def entry(self, addr: int, value: int) -> None:
        self.ram[addr : addr + 8] = value.to_bytes(8, "little")


class FakeVcpu:
    def __init__(self) -> None:
        self.regs = bytearray(REGS.size)
        self.sregs = LAY.new("struct kvm_sregs")
        self.events = LAY.new("struct kvm_vcpu_events")
        self.dregs = LAY.new("struct kvm_debugregs")
        self.sets = 0

    def get_regs(self) -> bytearray:
        return bytearray(self.regs)

    def set_regs(self, regs: bytes) -> None:
        self.regs[:] = regs
        self.sets += 1

    def get_sregs(self) -> bytearray:
        return bytearray(self.sregs)

    def get_vcpu_events(self) -> bytearray:
        return bytearray(self.events)

    def set_vcpu_events(self, events: bytes) -> None:
        self.events[:] = events

    def get_debugregs(self) -> bytearray:
        return bytearray(self.dregs)

    def set_debugregs(self, regs: bytes) -> None:
        self.dregs[:] = regs

    def sreg(self, *path: str, value: int) -> None:
        LAY.field("struct kvm_sregs", *path).put(self.sregs, value)

    def event(self, *path: str, value: int = 1) -> None:
        LAY.field("struct kvm_vcpu_events", *path).put(self.events, value)

    def reg(self, name: str) -> int:
        return REGS.unpack(self.regs)[KVM_NAMES.index(name)]


class Rig:
    def __init__(self, nested: int = 0, host_uses_drs: bool = True) -> None:
        self.vm = FakeVm(nested)
        self.vcpu = FakeVcpu()
        self.uses_drs = host_uses_drs
        vm = self.vm
        vm.entry(PML4, PDPT | P | W | A)
        vm.entry(PDPT, PD | P | W | A)
        vm.entry(PD, 0 | P | W | A | PS)
        vm.entry(PD + 8, PT | P | W | A)
        for n in range(512):
            vm.entry(PT + 8 * n, SMALL + n * 0x1000 | P | W | A)
        v = self.vcpu
        v.sreg("cr0", value=0x80050033)
        v.sreg("cr3", value=PML4)
        v.sreg("cr4", value=0x620)
        v.sreg("efer", value=0xD01)
        v.sreg("cs", "l", value=1)
        v.sreg("cs", "selector", value=0x10)
        self.ex = InPlace(vm, v, GuestDebugRegs(v), lambda: self.uses_drs)  # type: ignore[arg-type]

    def code(self, pc: int, hexcode: str) -> None:
        data = bytes.fromhex(hexcode)
        self.vm.ram[pc : pc + len(data)] = data

    def state(self, pc: int, rflags: int = 0x2, **regs: int) -> None:
        values = [regs.get(n, 0) for n in KVM_NAMES[:16]] + [pc, rflags]
        self.vcpu.regs[:] = REGS.pack(*values)

    def run(self, pc: int, fetch: Callable[[int, int], bytes] | None = None) -> bool:
        return self.ex(pc, fetch or self.vm.read_phys)


def carried_out(hexcode: str, rflags: int = 0x2, **regs: int) -> dict[str, int]:
    r = Rig()
    r.code(CODE, hexcode)
    r.state(CODE, rflags, **regs)
    assert r.run(CODE), r.ex.why
    return dict(zip(KVM_NAMES, REGS.unpack(r.vcpu.regs), strict=True))


# -- instruction classes -------------------------------------------------------------------

CF, PF, AF, ZF, SF, OF, RF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800, 0x10000


@pytest.mark.parametrize(
    ("code", "before", "flags_in", "after", "flags_out"),
    [
        ("4801d8", {"rax": 1 << 63, "rbx": 1 << 63}, 0, {"rax": 0}, CF | ZF | PF | OF),  # add
        ("01d8", {"rax": 0xFFFF_FFFF_0000_000F, "rbx": 1}, 0, {"rax": 0x10}, AF),  # add r32
        ("11d8", {"rax": 1, "rbx": 1}, CF, {"rax": 3}, PF),  # adc
        ("29d8", {"rax": 0, "rbx": 1}, 0, {"rax": 0xFFFF_FFFF}, CF | SF | PF | AF),  # sub
        ("19d8", {"rax": 5, "rbx": 4}, CF, {"rax": 0}, ZF | PF),  # sbb
        ("39d8", {"rax": 0x80000000, "rbx": 1}, 0, {"rax": 0x80000000}, OF | AF | PF),  # cmp
        ("21d8", {"rax": 0xF0, "rbx": 0x3C}, CF | OF | AF, {"rax": 0x30}, PF),  # and
        ("09d8", {"rax": 0x80, "rbx": 0}, 0, {"rax": 0x80}, 0),  # or
        ("31c0", {"rax": 0xFFFF_FFFF_FFFF_FFFF}, 0, {"rax": 0}, ZF | PF),  # xor
        ("85c0", {"rax": 0x8000_0000}, CF, {"rax": 0x8000_0000}, SF | PF),  # test
        ("a8ff", {"rax": 0}, 0, {"rax": 0}, ZF | PF),  # test al, imm8
        ("4883c0ff", {"rax": 0}, 0, {"rax": (1 << 64) - 1}, SF | PF),  # add r64, -1 (83)
        ("81e9ff000000", {"rcx": 0x100}, 0, {"rcx": 1}, AF),  # sub ecx, imm32
        ("80c4ff", {"rax": 0x0100}, 0, {"rax": 0x0000}, CF | ZF | PF | AF),  # add ah, 0xff
        ("ffc0", {"rax": 0x7FFF_FFFF}, CF, {"rax": 0x8000_0000}, CF | SF | OF | AF | PF),  # inc
        ("48ffc8", {"rax": 0}, 0, {"rax": (1 << 64) - 1}, SF | AF | PF),  # dec
        ("48f7d8", {"rax": 0}, CF, {"rax": 0}, ZF | PF),  # neg 0: CF clear
        ("f6d8", {"rax": 0x80}, 0, {"rax": 0x80}, CF | SF | OF),  # neg al = 0x80
        ("48f7d0", {"rax": 0}, SF, {"rax": (1 << 64) - 1}, SF),  # not: no flags
        ("88e0", {"rax": 0xAB00}, 0, {"rax": 0xABAB}, 0),  # mov al, ah
        ("4088e0", {"rax": 0x11, "rsp": 0x22}, 0, {"rax": 0x22, "rsp": 0x22}, 0),  # mov al, spl
        ("89d8", {"rax": (1 << 64) - 1, "rbx": 5}, 0, {"rax": 5}, 0),  # mov eax, ebx
        ("6689d8", {"rax": (1 << 64) - 1, "rbx": 5}, 0, {"rax": (1 << 64) - 1 - 0xFFFF + 5}, 0),
        ("48b88877665544332211", {}, 0, {"rax": 0x1122334455667788}, 0),
        ("48c7c0ffffffff", {}, 0, {"rax": (1 << 64) - 1}, 0),  # sign-extended imm32
        ("b0ff", {"rax": 0x1234}, 0, {"rax": 0x12FF}, 0),
        ("0fb6c4", {"rax": 0xAB00}, 0, {"rax": 0xAB}, 0),  # movzx eax, ah
        ("480fbec0", {"rax": 0x80}, 0, {"rax": (1 << 64) - 0x80}, 0),  # movsx rax, al
        ("4863c3", {"rbx": 0x8000_0000}, 0, {"rax": 0xFFFF_FFFF_8000_0000}, 0),  # movsxd
        ("4887d8", {"rax": 1, "rbx": 2}, 0, {"rax": 2, "rbx": 1}, 0),  # xchg
        ("87c0", {"rax": (1 << 64) - 1}, 0, {"rax": 0xFFFF_FFFF}, 0),  # xchg eax,eax: zero-ext
        ("90", {"rax": (1 << 64) - 1}, 0, {"rax": (1 << 64) - 1}, 0),  # nop: no zero-ext
        ("0f1f8400aaaaaaaa", {}, CF, {}, CF),  # hint nop with a memory form: never accessed
        ("488d443b08", {"rbx": 0x100, "rdi": 0x10}, 0, {"rax": 0x118}, 0),  # lea
        ("8d04ad00000000", {"rbp": 0x8000_0001}, 0, {"rax": 0x4}, 0),  # lea, no base, 32-bit
    ],
)
def test_each_class_writes_what_the_cpu_writes(
    code: str, before: dict[str, int], flags_in: int, after: dict[str, int], flags_out: int
) -> None:
    out = carried_out(code, 0x2 | flags_in, **before)
    expected = {**before, **after}
    for name in KVM_NAMES[:16]:
        assert out[name] == expected.get(name, 0), name
    assert out["rflags"] == 0x2 | flags_out
    assert out["rip"] == CODE + len(bytes.fromhex(code))


def test_lea_rip_relative_counts_from_the_next_instruction() -> None:
    out = carried_out("488d05f0ffffff")  # lea rax, [rip - 0x10]
    assert out["rax"] == CODE + 7 - 0x10


@pytest.mark.parametrize(
    ("code", "flags", "target"),
    [("ebfe", 0, CODE), ("e900010000", 0, CODE + 5 + 0x100), ("7402", ZF, CODE + 4),
     ("7402", 0, CODE + 2), ("0f8ffaffffff", SF | OF, CODE)],
)  # fmt: skip
def test_jumps(code: str, flags: int, target: int) -> None:
    out = carried_out(code, 0x2 | flags)
    assert out["rip"] == target
    assert out["rflags"] == 0x2 | flags


def test_rf_is_cleared_once_the_instruction_completes() -> None:
    assert carried_out("90", 0x2 | RF)["rflags"] == 0x2


@pytest.mark.parametrize(
    "code",
    [
        "f090", "f390", "2e90", "6790", "4066ffc0", "41419090",  # prefixes
        "0118", "8b03", "8700", "f718", "ff00", "c60001",  # memory operands
        "f7c800000000", "c7c800000000", "82c001", "63c3", "6648 63c3", "66eb00",  # near misses
        "8dc0", "f7e0", "d1e0", "0fafc0", "cc", "0f05", "0f1fc8", "c7f800000000",
    ],
)  # fmt: skip
def test_the_decoder_refuses(code: str) -> None:
    assert decode(bytes.fromhex(code.replace(" ", "")) + bytes(15)) is None


# -- the vCPU's conditions -----------------------------------------------------------------


def refused(r: Rig, pc: int = CODE, code: str = "48ffc0") -> str:
    """``code`` at ``pc`` (identity-mapped below 4 MiB; a test mapping ``pc`` elsewhere writes
    the code itself) is refused and nothing is written."""
    if pc < len(r.vm.ram):
        r.code(pc, code)
    before = bytes(r.vcpu.regs)
    if not any(before):
        r.state(pc)
        before = bytes(r.vcpu.regs)
    assert not r.run(pc)
    assert bytes(r.vcpu.regs) == before and r.vcpu.sets == 0
    return r.ex.why


def test_guest_single_step_is_refused() -> None:
    r = Rig()
    r.state(CODE, 0x2 | 0x100)
    assert "TF" in refused(r)


def test_rip_elsewhere_is_refused() -> None:
    r = Rig()
    r.state(CODE + 1)
    r.code(CODE, "48ffc0")
    assert not r.run(CODE)


@pytest.mark.parametrize(
    ("path", "value"), [(("cs", "l"), 0), (("cs", "db"), 1), (("efer",), 0x100)]
)
def test_not_64_bit_mode_is_refused(path: tuple[str, ...], value: int) -> None:
    r = Rig()
    r.vcpu.sreg(*path, value=value)
    assert "64-bit" in refused(r)


@pytest.mark.parametrize(
    "path",
    [("exception", "injected"), ("exception", "pending"), ("interrupt", "injected"),
     ("interrupt", "shadow"), ("nmi", "injected"), ("nmi", "pending"), ("smi", "smm"),
     ("smi", "pending"), ("triple_fault", "pending")],
)  # fmt: skip
def test_events_in_flight_shadow_and_smm_are_refused(path: tuple[str, str]) -> None:
    r = Rig()
    r.vcpu.event(*path)
    assert "event" in refused(r)


def test_a_kernel_with_nested_guests_is_refused() -> None:
    assert "nested" in refused(Rig(nested=1))


def test_the_guests_execute_breakpoint_at_pc_is_refused_unless_the_host_owns_the_drs() -> None:
    r = Rig(host_uses_drs=False)
    dr = GuestDebugRegs(r.vcpu)
    dr.write({"dr0": CODE, "dr7": 0x401})
    assert "breakpoint" in refused(r)
    dr.write({"dr0": CODE + 3})
    r.state(CODE)
    assert r.run(CODE)
    r.uses_drs = True  # the guest's DR0 is not in effect while the host's are
    r.code(CODE + 3, "90")
    r.state(CODE + 3)
    assert r.run(CODE + 3)


def _walk_refusal(change: Callable[[Rig], None], cpl: int = 0) -> str:
    r = Rig()
    change(r)
    r.vcpu.sreg("ss", "dpl", value=cpl)
    r.vcpu.sreg("cs", "selector", value=0x10 | cpl)
    return refused(r, SMALL + 0x10)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.vm.entry(PT + 0, SMALL),  # not present
        lambda r: r.vm.entry(PT + 0, SMALL | P),  # not accessed yet: the CPU would set A
        lambda r: r.vm.entry(PT + 0, SMALL | P | A | NX),  # no-execute
        lambda r: r.vm.entry(PD + 8, PT | P | W | A | NX),  # no-execute higher up
        lambda r: r.vm.entry(PT + 0, SMALL | P | A | 1 << 45),  # maybe above MAXPHYADDR
        lambda r: r.vm.entry(PML4, PDPT | P | W | A | PS),  # PS in a PML4 entry
        lambda r: r.vm.entry(PDPT, P | A | PS),  # a 1 GiB page
        lambda r: r.vcpu.sreg("cr3", value=8 << 20),  # tables outside RAM
    ],
)
def test_code_the_cpu_could_not_fetch_unchanged_is_refused(change: Callable[[Rig], None]) -> None:
    assert "fetchable" in _walk_refusal(change)


def _user_everywhere(r: Rig) -> None:
    for addr, value in ((PML4, PDPT), (PDPT, PD), (PD + 8, PT), (PT, SMALL)):
        r.vm.entry(addr, value | P | W | A | U)


def test_a_user_page_under_smep_and_a_supervisor_page_at_cpl3_are_refused() -> None:
    def smep(r: Rig) -> None:
        _user_everywhere(r)
        r.vcpu.sreg("cr4", value=0x620 | 1 << 20)

    assert "fetchable" in _walk_refusal(smep)
    assert "fetchable" in _walk_refusal(lambda r: None, cpl=3)
    r = Rig()
    _user_everywhere(r)
    r.vcpu.sreg("ss", "dpl", value=3)
    r.vcpu.sreg("cs", "selector", value=0x13)
    r.code(SMALL + 0x10, "48ffc0")
    r.state(SMALL + 0x10)
    assert r.run(SMALL + 0x10)  # CPL3 on a user page, and CPL0 on one without SMEP:
    r = Rig()
    _user_everywhere(r)
    r.code(SMALL + 0x10, "48ffc0")
    r.state(SMALL + 0x10)
    assert r.run(SMALL + 0x10)


def test_an_instruction_across_pages_needs_both() -> None:
    pc = SMALL + 0x1000 - 2  # 48 ff | c0
    r = Rig()
    r.state(pc, rax=1)
    r.code(pc, "48ffc0")
    assert r.run(pc)
    assert r.vcpu.reg("rax") == 2 and r.vcpu.reg("rip") == pc + 3
    r = Rig()
    r.vm.entry(PT + 8, SMALL + 0x1000 | P | A | NX)
    assert "fetchable" in refused(r, pc)
    r = Rig()
    r.code(SMALL + 0x1000 - 1, "90")  # one byte: the next page is never needed
    r.vm.entry(PT + 8, SMALL + 0x1000)
    r.state(SMALL + 0x1000 - 1)
    assert r.run(SMALL + 0x1000 - 1)


def test_a_jump_to_a_non_canonical_address_is_refused() -> None:
    r = Rig()
    pc = 0x7FFF_FFFF_F000
    r.vm.entry(PML4 + 8 * 255, PDPT | P | W | A)
    r.vm.entry(PDPT + 8 * 511, PD | P | W | A)
    r.vm.entry(PD + 8 * 511, PT | P | W | A)
    r.vm.entry(PT + 8 * 511, SMALL | P | W | A)
    r.code(SMALL, "e900100000")  # jmp +0x1000: past the canonical half
    assert "canonical" in refused(r, pc, "e900100000")
    r = Rig()
    for addr, value in ((PML4 + 8 * 255, PDPT), (PDPT + 8 * 511, PD), (PD + 8 * 511, PT),
                        (PT + 8 * 511, SMALL)):  # fmt: skip
        r.vm.entry(addr, value | P | W | A)
    r.code(SMALL + 0xFFF, "90")
    assert "canonical" in refused(r, 0x7FFF_FFFF_FFFF, "90")  # falls through out of it


def test_the_bytes_under_a_trap_word_are_the_guests() -> None:
    r = Rig()
    r.code(CODE, "cc ffc0".replace(" ", ""))  # the debugger's int3 over 48 ff c0
    r.state(CODE, rax=1)

    def fetch(addr: int, n: int) -> bytes:
        view = bytearray(r.vm.read_phys(addr, n))
        view[CODE - addr] = 0x48  # the saved original byte, as DebugState.read_view shows it
        return bytes(view)

    assert r.run(CODE, fetch)
    assert r.vcpu.reg("rax") == 2 and r.vcpu.reg("rip") == CODE + 3
    r.state(CODE, rax=1)
    assert not r.run(CODE)  # without the debugger's view: an int3, the CPU's to run


def test_a_page_walked_before_is_walked_again_when_an_entry_changed() -> None:
    """The walk is kept per page (code_fetch.WalkCache) but holds only while each entry it
    read still reads the same: a table the guest changed since is seen at the next hit."""
    r = Rig()
    pc = SMALL + 0x10
    r.code(pc, "48ffc0")
    r.state(pc)
    assert r.run(pc)
    r.vm.entry(PT, SMALL | P | A | NX)
    r.state(pc)
    r.vcpu.sets = 0
    assert "fetchable" in refused(r, pc)
    r.vm.entry(PT, SMALL | P | A)
    r.state(pc)
    assert r.run(pc)
    r.vm.entry(PD + 8, (PT + 0x1000) | P | W | A)  # another table, mapping the page elsewhere
    r.vm.entry(PT + 0x1000, (SMALL + 0x1000) | P | A)
    r.code(SMALL + 0x1010, "90")
    r.state(pc, rax=7)
    assert r.run(pc)
    assert r.vcpu.reg("rax") == 7 and r.vcpu.reg("rip") == pc + 1  # the nop there, not the inc
