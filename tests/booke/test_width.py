"""The 64-bit cores (e5500, e6500): nothing is cut to 32 bits on its way to or from KVM.

Every address KVM BookE carries is a ``__u64`` (docs/reference/kvm-debug-abi.md §9.1-9.2),
so the plugin must hand a 64-bit core's values to KVM whole: GDB's register writes, hardware
point addresses, the exit's address, SRR0 of a re-injected interrupt. And a re-injected
interrupt enters the guest's handler with MSR[CM] = EPCR[ICM], as ``kvmppc_booke_irqprio_deliver``
does under CONFIG_64BIT (§9.4).

These run on the emulated e500mc host, the only BookE host this package has without the 64-bit
ones: its KVM interface is the same bytes (§9.2). Where a test needs what only a 64-bit host
kernel answers (``KVM_REG_PPC_EPCR`` exists only under CONFIG_64BIT), :class:`Host64Kernel`
answers that one id over the real vCPU and passes every other call through, recording what the
plugin wrote with KVM_SET_REGS.
"""

from __future__ import annotations

import pytest
from emuhost.machine import Machine

from guestdbg.arch import CoreInfo, OwnershipPolicy, VcpuDebugRequest
from guestdbg.demo.elf_info import symbols
from guestdbg.errors import GuestDebugError, InvalidRequest, KernelError
from guestdbg.events import EventKind, Reinject, ResumeAction
from guestdbg.gdb.target import encode_register
from guestdbg.kvm.constants import KVM_EXIT_DEBUG
from guestdbg.plugins import default_registry
from guestdbg.points import DebugPoint, PointKind
from guestdbg.session import Session
from guestdbg.testing.build_dir import build_dir
from guestdbg_booke import abi, numbering, regs
from guestdbg_booke.debugops import BookeVcpuDebug
from guestdbg_booke.emuhost.vcpu import EmulatedBookeVcpu
from guestdbg_booke.gdb_arch import gdb_arch_for
from guestdbg_booke.guests.build import PACKAGE_DIR, build64
from guestdbg_booke.plugin import INFO

L = abi.layout()
REGS = "struct kvm_regs"
WIDE = 0x0000_0001_2345_6788
"""An address above 4 GiB whose low half is a plausible 32-bit address (0x23456788)."""


class Host64Kernel:
    """The e500mc host's vCPU as a 64-bit host kernel's would answer one more ONE_REG id:
    ``KVM_REG_PPC_EPCR`` (``epcr``; None refuses it like the 32-bit host). Everything else is
    the real vCPU; ``written`` keeps every KVM_SET_REGS buffer and ``asked`` every ONE_REG id."""

    def __init__(self, vcpu: EmulatedBookeVcpu, epcr: int | None = None) -> None:
        self.inner = vcpu
        self.epcr = epcr
        self.written: list[bytes] = []
        self.asked: list[int] = []

    @property
    def vcpu_id(self) -> int:
        return self.inner.vcpu_id

    @property
    def kvm_run(self) -> memoryview:
        return self.inner.kvm_run

    def run(self) -> int:
        return self.inner.run()

    def kick(self) -> None:
        self.inner.kick()

    def set_guest_debug(self, dbg: bytes) -> None:
        self.inner.set_guest_debug(dbg)

    def get_regs(self) -> bytearray:
        return self.inner.get_regs()

    def set_regs(self, regs: bytes) -> None:
        self.written.append(bytes(regs))
        self.inner.set_regs(regs)

    def get_sregs(self) -> bytearray:
        return self.inner.get_sregs()

    def set_sregs(self, sregs: bytes) -> None:
        self.inner.set_sregs(sregs)

    def get_one_reg(self, reg_id: int) -> int:
        self.asked.append(reg_id)
        if reg_id == abi.KVM_REG_PPC_EPCR and self.epcr is not None:
            return self.epcr
        return self.inner.get_one_reg(reg_id)

    def set_one_reg(self, reg_id: int, value: int) -> None:
        self.inner.set_one_reg(reg_id, value)

    def translate(self, gva: int) -> int | None:
        return self.inner.translate(gva)


@pytest.fixture
def machine() -> Machine:
    return Machine("booke_owndebug", "e500mc")


def ops(m: Machine, core: str, vcpu: Host64Kernel) -> BookeVcpuDebug:
    return BookeVcpuDebug(VcpuDebugRequest(INFO, INFO.core(core), m.vm, vcpu))


def written(v: Host64Kernel, *path: str | int) -> int:
    return L.field(REGS, *path).get(v.written[-1])


# -- GDB's registers ---------------------------------------------------------------------------


def test_the_64bit_cores_lay_out_gdbs_power64_core_and_e500mc_stays_32bit() -> None:
    """GDB's ``power64-core.xml``: r0-r31, pc, msr, lr, ctr 64 bits, cr and xer 32."""
    for core, word in (("e500mc", 32), ("e5500", 64), ("e6500", 64), ("e500v2", 32)):
        sizes = {r.name: r.bitsize for r in gdb_arch_for(INFO.core(core)).registers}
        assert {sizes[f"r{n}"] for n in range(32)} == {word}, core
        assert [sizes[n] for n in ("pc", "msr", "cr", "lr", "ctr", "xer")] == [
            word,
            word,
            32,
            word,
            word,
            32,
        ], core
        assert [sizes[n] for n in ("srr0", "dear", "iac1", "esr", "dbsr")] == [
            word,
            word,
            word,
            32,
            32,
        ], core
    e6500 = {r.name: r for r in gdb_arch_for("e6500").registers}
    assert [e6500[f"vr{n}"].bitsize for n in range(32)] == [128] * 32
    assert e6500["vr7"].type == "vec128" and e6500["vscr"].bitsize == 32
    assert not any(r.name.startswith("vr") for r in gdb_arch_for("e5500").registers)


def test_a_64bit_register_write_reaches_kvm_set_regs_whole(machine: Machine) -> None:
    arch = gdb_arch_for("e5500")
    names = [r.name for r in arch.registers]
    v = Host64Kernel(machine.vcpu)
    arch.write_registers(v, {names.index("r3"): WIDE, names.index("srr0"): WIDE + 8})
    assert (written(v, "gpr", 3), written(v, "srr0")) == (WIDE, WIDE + 8)


def test_a_value_wider_than_the_register_is_refused_and_nothing_is_written(
    machine: Machine,
) -> None:
    """e500mc's r3 is 32 bits: 0x1_2345_6788 used to be cut to 0x23456788 silently."""
    v = Host64Kernel(machine.vcpu)
    before = bytes(v.get_regs())
    for core in ("e500mc", "e5500"):
        arch = gdb_arch_for(core)
        names = [r.name for r in arch.registers]
        too_wide = 1 << arch.registers[names.index("r3")].bitsize
        with pytest.raises(InvalidRequest, match=r"does not fit the (32|64)-bit register r3"):
            arch.write_registers(v, {names.index("r4"): 1, names.index("r3"): too_wide})
    assert v.written == [] and bytes(v.get_regs()) == before


def test_altivec_is_unavailable_where_the_vcpu_refuses_it_and_asked_once(
    machine: Machine,
) -> None:
    """The e500mc host refuses VR0-31 and VSCR as a host without AltiVec does (powerpc.c:
    -ENXIO); VRSAVE is booke.c's own and still reads (§9.3). One refusal stands for the whole
    vector file: the next read asks for none of it."""
    arch = gdb_arch_for("e6500")
    names = [r.name for r in arch.registers]
    v = Host64Kernel(machine.vcpu)
    with pytest.raises(GuestDebugError):
        machine.vcpu.get_one_reg(abi.KVM_REG_PPC_VR0)
    values = arch.read_registers(v)
    assert all(values[names.index(f"vr{n}")] is None for n in range(32))
    assert values[names.index("vscr")] is None
    assert isinstance(values[names.index("vrsave")], int)
    assert encode_register(None, 128, "big") == "xx" * 16  # what GDB is sent for each vr
    v.asked.clear()
    arch.read_registers(v)
    vector_ids = {abi.KVM_REG_PPC_VR0 + n for n in range(32)} | {abi.KVM_REG_PPC_VSCR}
    assert not vector_ids & set(v.asked)
    assert abi.KVM_REG_PPC_VRSAVE in v.asked


# -- points, exits and reinjection -------------------------------------------------------------


def test_points_and_exits_keep_all_64_bits(machine: Machine) -> None:
    d = ops(machine, "e5500", Host64Kernel(machine.vcpu))
    dbg = d.encode_guest_debug([DebugPoint(PointKind.HW_BREAK, WIDE, 4)], False, False)
    assert dbg is not None
    assert L.field("struct kvm_guest_debug", "arch", "bp", 0, "addr").get(dbg) == WIDE
    run = L.new("struct kvm_run")
    L.field("struct kvm_run", "exit_reason").put(run, KVM_EXIT_DEBUG)
    L.field("struct kvm_run", "debug", "arch", "address").put(run, WIDE)
    L.field("struct kvm_run", "debug", "arch", "status").put(run, abi.KVMPPC_DEBUG_BREAKPOINT)
    ev = d.decode_exit(memoryview(run))
    assert (ev.kind, ev.pc, ev.address) == (EventKind.HW_BREAK, WIDE, WIDE)


@pytest.mark.parametrize(("epcr", "cm"), [(regs.SPRN_EPCR_ICM, regs.MSR_CM), (0, 0)])
def test_reinjection_on_a_64bit_core_enters_the_handler_in_the_mode_epcr_icm_gives(
    machine: Machine, epcr: int, cm: int
) -> None:
    """booke.c ``kvmppc_booke_irqprio_deliver``: MSR = old & (CE|ME|DE), | CM if EPCR[ICM];
    SRR0 = the whole NIP."""
    v = Host64Kernel(machine.vcpu, epcr=epcr)
    d = ops(machine, "e5500", v)
    old_msr = L.field(REGS, "msr").get(v.get_regs())
    d.inject(Reinject(numbering.PROGRAM, WIDE, {"esr": regs.ESR_PIL, "srr0": WIDE}))
    assert written(v, "srr0") == WIDE
    assert written(v, "srr1") == old_msr
    keep = regs.MSR_CE | regs.MSR_ME | regs.MSR_DE
    assert written(v, "msr") == (old_msr & keep) | cm


def test_a_32bit_core_never_asks_for_epcr_nor_sets_cm(machine: Machine) -> None:
    """e500mc has no MSR[CM]; its kernel (32-bit) has no EPCR id to ask."""
    v = Host64Kernel(machine.vcpu, epcr=regs.SPRN_EPCR_ICM)
    d = ops(machine, "e500mc", v)
    d.inject(Reinject(numbering.PROGRAM, 0x100, {"esr": regs.ESR_PIL, "srr0": 0x100}))
    assert abi.KVM_REG_PPC_EPCR not in v.asked
    assert not written(v, "msr") & regs.MSR_CM


def test_a_64bit_core_on_a_kernel_without_epcr_injects_in_32bit_mode(machine: Machine) -> None:
    """A kernel that refuses KVM_REG_PPC_EPCR has no EPCR[ICM] to apply either (the CM line of
    ``kvmppc_booke_irqprio_deliver`` is under the same CONFIG_64BIT)."""
    with pytest.raises(KernelError):
        machine.vcpu.get_one_reg(abi.KVM_REG_PPC_EPCR)
    v = Host64Kernel(machine.vcpu)
    ops(machine, "e6500", v).inject(Reinject(numbering.PROGRAM, 0x100, {"esr": regs.ESR_PIL}))
    assert abi.KVM_REG_PPC_EPCR in v.asked
    assert not written(v, "msr") & regs.MSR_CM


def test_every_core_the_plugin_lists_has_a_layout_of_its_width() -> None:
    for core in INFO.cores:
        arch = gdb_arch_for(core)
        pc = arch.registers[arch.pc_regnum]
        assert pc.bitsize == core.register_bits, core.name
    unknown = CoreInfo("e6501", "a core the plugin does not know", INFO.cores[0].caps, 64)
    assert gdb_arch_for(unknown).architecture == "powerpc:common64"


# -- on the 64-bit emulated hosts, when installed ------------------------------------------------


@pytest.mark.parametrize("policy", OwnershipPolicy.ALL)
@pytest.mark.parametrize("core", ["e5500", "e6500"])
def test_a_64bit_guest_steps_around_its_loop_in_64bit_mode_under_both_policies(
    core: str, policy: str
) -> None:
    """Host-priority steps with DBCR0[IC]; guest-priority plants traps where ``successors``
    says the instruction goes, computed in the mode MSR[CM] gives (§9.4): around the
    conformance loop, the ``b code0`` back edge included."""
    reg = default_registry()
    if f"{core}-unicorn" not in [h.name for h in reg.emulated_hosts()]:
        pytest.skip(f"no emulated {core} host: {core}-unicorn is not registered")
    elf = build64(PACKAGE_DIR / "conformance.S", build_dir("ppc_booke"))
    sym = symbols(elf)
    s = Session(reg.emulated_host(core).create_vm(str(elf)), "ppc_booke", core, policy=policy)
    try:
        at = DebugPoint(PointKind.HW_BREAK, sym["code2"], 4)
        s.insert_point(at)
        s.resume({0: ResumeAction()})
        ev = s.wait_stop(10)
        assert ev is not None and ev.reason.pc == sym["code2"]
        s.remove_point(at)
        pcs = []
        for _ in range(4):
            s.resume({0: ResumeAction(step=True)})
            ev = s.wait_stop(10)
            assert ev is not None
            pcs.append(ev.reason.pc)
        assert pcs == [sym["code3"], sym["code0"], sym["code1"], sym["code2"]]
        msr = L.field(REGS, "msr").get(s.vm.vcpus[0].get_regs())
        assert msr & regs.MSR_CM
    finally:
        s.close()
