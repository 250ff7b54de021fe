"""``execute_in_place`` on BookE: the instruction subset (``guestdbg_booke.execute``) with
hand-checked values per instruction class, what it refuses, the plugin member's own refusals
(guest priority, 64-bit cores, a guest IAC), and the differential run against Unicorn's PowerPC
(``guestdbg_booke.fidelity.execute_diff``) on the emulated e500mc and e500v2 hosts."""

from __future__ import annotations

import dataclasses

import pytest

import guestdbg_booke.fidelity.execute_diff as diff
from guestdbg.arch import OwnershipPolicy, VcpuDebugRequest
from guestdbg.events import StopKind
from guestdbg.guest_build import cache_dir
from guestdbg.plugins import default_registry
from guestdbg.points import DebugPoint, PointKind
from guestdbg.vcpu import VmHandle
from guestdbg_booke.debugops import BookeVcpuDebug
from guestdbg_booke.execute import Regs, execute
from guestdbg_booke.guests.build import PACKAGE_DIR, build
from guestdbg_booke.plugin import CORES, INFO

from .conftest import MakeSession
from .harness import HostIo, Machine, run_to_done

PC = 0x1000
SO, OV, CA = 0x80000000, 0x40000000, 0x20000000


def d(op: int, rt: int, ra: int, imm: int) -> int:
    return (op << 26) | (rt << 21) | (ra << 16) | (imm & 0xFFFF)


def x(xo: int, rt: int, ra: int, rb: int, rc: int = 0, oe: int = 0) -> int:
    return (31 << 26) | (rt << 21) | (ra << 16) | (rb << 11) | (oe << 10) | (xo << 1) | rc


def m(op: int, rs: int, ra: int, sh: int, mb: int, me: int, rc: int = 0) -> int:
    return (op << 26) | (rs << 21) | (ra << 16) | (sh << 11) | (mb << 6) | (me << 1) | rc


def spr(xo: int, reg: int, number: int) -> int:
    return (31 << 26) | (reg << 21) | ((((number & 31) << 5) | (number >> 5)) << 11) | (xo << 1)


def regs(cr: int = 0, xer: int = 0, lr: int = 0, ctr: int = 0, **gprs: int) -> Regs:
    g = [0] * 32
    for name, value in gprs.items():
        g[int(name[1:])] = value
    return Regs(tuple(g), cr, xer, lr, ctr, PC)


def run(word: int, before: Regs) -> Regs:
    out = execute(word, before)
    assert out is not None, f"{word:#010x} refused"
    return out


# -- arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "before", "gpr3", "xer", "cr"),
    [
        (d(14, 3, 0, -1), regs(r0=5), 0xFFFFFFFF, 0, 0),  # li r3,-1: rA=0 reads as 0
        (d(15, 3, 4, 0x8000), regs(r4=0x1234), 0x80001234, 0, 0),  # addis
        (d(12, 3, 4, 1), regs(r4=0xFFFFFFFF), 0, CA, 0),  # addic: carry out
        (d(13, 3, 4, -1), regs(r4=0, xer=SO), 0xFFFFFFFF, SO, 0x90000000),  # addic.: LT|SO
        (d(8, 3, 4, 0), regs(r4=1), 0xFFFFFFFF, 0, 0),  # subfic 0-1: borrow, CA=0
        (d(8, 3, 4, 0), regs(r4=0), 0, CA, 0),  # subfic 0-0: CA=1
        (d(7, 3, 4, -3), regs(r4=5), 0xFFFFFFF1, 0, 0),  # mulli
        (x(266, 3, 4, 5, rc=1, oe=1), regs(r4=0x7FFFFFFF, r5=1), 0x80000000, SO | OV, 0x90000000),
        (x(266, 3, 4, 5, oe=1), regs(r4=1, r5=1, xer=SO | OV), 2, SO, 0),  # OV cleared, SO kept
        (x(138, 3, 4, 5), regs(r4=1, r5=2, xer=CA), 4, 0, 0),  # adde: 1+2+CA, CA cleared
        (x(202, 3, 4, 0), regs(r4=0xFFFFFFFF, xer=CA), 0, CA, 0),  # addze
        (x(234, 3, 4, 0), regs(r4=0, xer=0), 0xFFFFFFFF, 0, 0),  # addme: 0-1+0
        (x(8, 3, 4, 5), regs(r4=5, r5=3), 0xFFFFFFFE, 0, 0),  # subfc 3-5: borrow
        (x(8, 3, 4, 5), regs(r4=3, r5=5), 2, CA, 0),  # subfc 5-3
        (x(136, 3, 4, 5), regs(r4=3, r5=5, xer=0), 1, CA, 0),  # subfe 5-3-1
        (x(40, 3, 4, 5, rc=1), regs(r4=5, r5=5), 0, 0, 0x20000000),  # subf.: EQ
        (x(104, 3, 4, 0, oe=1), regs(r4=0x80000000), 0x80000000, SO | OV, 0),  # nego
        (x(235, 3, 4, 5, oe=1), regs(r4=0x10000, r5=0x10000), 0, SO | OV, 0),  # mullwo
        (x(75, 3, 4, 5), regs(r4=0xFFFFFFFF, r5=1), 0xFFFFFFFF, 0, 0),  # mulhw -1*1
        (x(11, 3, 4, 5), regs(r4=0xFFFFFFFF, r5=0xFFFFFFFF), 0xFFFFFFFE, 0, 0),  # mulhwu
        (x(491, 3, 4, 5), regs(r4=0xFFFFFFF9, r5=2), 0xFFFFFFFD, 0, 0),  # divw -7/2 = -3
        (x(459, 3, 4, 5, rc=1), regs(r4=7, r5=2), 3, 0, 0x40000000),  # divwu.
    ],
)
def test_arithmetic(word: int, before: Regs, gpr3: int, xer: int, cr: int) -> None:
    out = run(word, before)
    assert (out.gpr[3], out.xer, out.cr, out.pc) == (gpr3, xer, cr, PC + 4)


# -- logic, shifts, rotates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "before", "gpr3", "xer", "cr"),
    [
        (x(28, 4, 3, 5, rc=1), regs(r4=0xF0, r5=0x0F), 0, 0, 0x20000000),  # and.
        (x(124, 4, 3, 4), regs(r4=0), 0xFFFFFFFF, 0, 0),  # not
        (x(60, 4, 3, 5), regs(r4=0xFF, r5=0x0F), 0xF0, 0, 0),  # andc
        (x(412, 4, 3, 5), regs(r4=0, r5=0xFFFFFFFE), 1, 0, 0),  # orc
        (x(284, 4, 3, 5), regs(r4=0xF0F0F0F0, r5=0xFF00FF00), 0xF00FF00F, 0, 0),  # eqv
        (d(28, 4, 3, 0x8000), regs(r4=0xFFFF8001), 0x8000, 0, 0x40000000),  # andi.
        (d(25, 4, 3, 0x8000), regs(r4=1), 0x80000001, 0, 0),  # oris
        (d(27, 4, 3, 0xFFFF), regs(r4=0xFFFF0000), 0, 0, 0),  # xoris
        (x(824, 4, 3, 4), regs(r4=0xFFFFFFF1), 0xFFFFFFFF, CA, 0),  # srawi: 1 bits lost
        (x(824, 4, 3, 4), regs(r4=0xFFFFFFF0), 0xFFFFFFFF, 0, 0),  # srawi: only 0 bits lost
        (x(824, 4, 3, 0), regs(r4=0x80000000, xer=CA), 0x80000000, 0, 0),  # srawi 0: CA=0
        (x(792, 4, 3, 5), regs(r4=0x80000000, r5=40), 0xFFFFFFFF, CA, 0),  # sraw >= 32
        (x(792, 4, 3, 5), regs(r4=0x40000000, r5=33), 0, 0, 0),
        (x(24, 4, 3, 5), regs(r4=1, r5=32), 0, 0, 0),  # slw 32
        (x(24, 4, 3, 5), regs(r4=1, r5=0x41), 2, 0, 0),  # slw uses 6 bits of rB
        (x(536, 4, 3, 5), regs(r4=0x80000000, r5=31), 1, 0, 0),  # srw
        (x(26, 4, 3, 0), regs(r4=0), 32, 0, 0),  # cntlzw 0
        (x(954, 4, 3, 0), regs(r4=0x1280), 0xFFFFFF80, 0, 0),  # extsb
        (x(922, 4, 3, 0, rc=1), regs(r4=0x7FFF), 0x7FFF, 0, 0x40000000),  # extsh.
        (m(21, 4, 3, 8, 24, 31), regs(r4=0x12345678), 0x12, 0, 0),  # rlwinm: rotlwi + mask
        (m(21, 4, 3, 0, 28, 3), regs(r4=0xFFFFFFFF), 0xF000000F, 0, 0),  # wrapping mask
        (m(20, 4, 3, 0, 16, 31), regs(r3=0xAAAAAAAA, r4=0x12345678), 0xAAAA5678, 0, 0),
        (m(23, 4, 3, 5, 0, 31), regs(r4=0x80000001, r5=33), 0x00000003, 0, 0),  # rlwnm
    ],
)
def test_logic_shift_rotate(word: int, before: Regs, gpr3: int, xer: int, cr: int) -> None:
    out = run(word, before)
    assert (out.gpr[3], out.xer, out.cr) == (gpr3, xer, cr)


# -- compares, CR, SPR moves, isel ----------------------------------------------------------------


def test_compares_set_the_named_field_with_so() -> None:
    cmpwi_cr7 = (11 << 26) | (7 << 23) | (4 << 16) | 0xFFFF  # cmpwi cr7,r4,-1
    assert run(cmpwi_cr7, regs(r4=0, xer=SO)).cr == 0x5  # GT|SO
    cmplwi = (10 << 26) | (4 << 16) | 1
    assert run(cmplwi, regs(r4=0xFFFFFFFF)).cr == 0x40000000  # unsigned: GT
    cmpw_cr1 = x(0, 1 << 2, 4, 5)
    assert run(cmpw_cr1, regs(r4=0xFFFFFFFF, r5=0, cr=0xFFFFFFFF)).cr == 0xF8FFFFFF  # LT
    cmplw = x(32, 0, 4, 5)
    assert run(cmplw, regs(r4=0xFFFFFFFF, r5=0)).cr == 0x40000000


def test_cr_and_spr_moves() -> None:
    before = regs(cr=0x12345678, xer=SO | CA | 5, lr=0x100, ctr=0x200, r4=0xABCD0000)
    assert run(spr(339, 3, 8), before).gpr[3] == 0x100  # mflr
    assert run(spr(339, 3, 9), before).gpr[3] == 0x200  # mfctr
    assert run(spr(339, 3, 1), before).gpr[3] == SO | CA | 5  # mfxer
    assert run(spr(467, 4, 8), before).lr == 0xABCD0000  # mtlr
    assert run(spr(467, 4, 9), before).ctr == 0xABCD0000  # mtctr
    assert run(spr(467, 5, 1), before).xer == 0  # mtxer r5 (= 0)
    assert run(x(19, 3, 0, 0), before).gpr[3] == 0x12345678  # mfcr
    mtcrf_cr0_cr7 = (31 << 26) | (4 << 21) | (0x81 << 12) | (144 << 1)
    assert run(mtcrf_cr0_cr7, before).cr == 0xA2345670
    crxor_6 = (19 << 26) | (6 << 21) | (6 << 16) | (6 << 11) | (193 << 1)  # clears bit 6
    assert run(crxor_6, regs(cr=0xFFFFFFFF)).cr == 0xFDFFFFFF
    creqv_1 = (19 << 26) | (1 << 21) | (1 << 16) | (1 << 11) | (289 << 1)  # sets bit 1
    assert run(creqv_1, regs(cr=0)).cr == 0x40000000
    mcrf_cr1_cr0 = (19 << 26) | (1 << 23) | (0 << 18)
    assert run(mcrf_cr1_cr0, regs(cr=0x90000000)).cr == 0x99000000


def test_isel_picks_ra_or_zero_on_the_bit_and_rb_otherwise() -> None:
    isel_eq = (31 << 26) | (3 << 21) | (4 << 16) | (5 << 11) | (2 << 6) | (15 << 1)
    assert run(isel_eq, regs(cr=0x20000000, r4=7, r5=9)).gpr[3] == 7
    assert run(isel_eq, regs(cr=0, r4=7, r5=9)).gpr[3] == 9
    isel_zero = isel_eq & ~(31 << 16)
    assert run(isel_zero, regs(cr=0x20000000, r0=7, r5=9)).gpr[3] == 0


# -- branches ----------------------------------------------------------------------------------


def test_branches() -> None:
    assert run(0x48000008, regs()).pc == PC + 8  # b .+8
    bl_back = run(0x4BFFFFFD, regs())  # bl .-4
    assert (bl_back.pc, bl_back.lr) == (PC - 4, PC + 4)
    assert run(0x48000102, regs()).pc == 0x100  # ba 0x100
    bdnz = (16 << 26) | (16 << 21) | 0x20
    taken = run(bdnz, regs(ctr=2))
    assert (taken.pc, taken.ctr) == (PC + 0x20, 1)
    fell = run(bdnz, regs(ctr=1))
    assert (fell.pc, fell.ctr) == (PC + 4, 0)
    beq = (16 << 26) | (12 << 21) | (2 << 16) | 0x40
    assert run(beq, regs(cr=0x20000000)).pc == PC + 0x40
    assert run(beq, regs(cr=0x80000000)).pc == PC + 4
    blrl = (19 << 26) | (20 << 21) | (16 << 1) | 1
    out = run(blrl, regs(lr=0x2003))
    assert (out.pc, out.lr) == (0x2000, PC + 4)  # the old LR, its low bits cleared
    bctr = (19 << 26) | (20 << 21) | (528 << 1)
    assert run(bctr, regs(ctr=0x3000)).pc == 0x3000
    bdnzlr = (19 << 26) | (16 << 21) | (16 << 1)
    out = run(bdnzlr, regs(lr=0x2000, ctr=5))
    assert (out.pc, out.ctr) == (0x2000, 4)


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word",
    [
        d(32, 3, 4, 0),  # lwz
        d(36, 3, 4, 0),  # stw
        x(23, 3, 4, 5),  # lwzx
        x(4, 31, 0, 0),  # trap
        d(3, 4, 3, 0),  # twi
        0x44000002,  # sc
        (19 << 26) | (50 << 1),  # rfi
        (19 << 26) | (150 << 1),  # isync
        x(83, 3, 0, 0),  # mfmsr
        x(146, 3, 0, 0),  # mtmsr
        spr(339, 3, 272),  # mfsprg0
        spr(467, 3, 0x134),  # mtspr DBCR0
        spr(339, 3, 1) | 1,  # mfxer with its reserved bit 31
        x(0, 0, 4, 5) | (1 << 21),  # cmp with L=1
        x(0, 0, 4, 5) | (1 << 22),  # cmp with its reserved bit 9
        x(0, 0, 4, 5, rc=1),  # cmp with Rc
        (11 << 26) | (1 << 21),  # cmpi with L=1
        x(75, 3, 4, 5, oe=1),  # mulhw with the reserved bit 21
        x(202, 3, 4, 1),  # addze with rB
        x(19, 3, 0, 0) | (1 << 20),  # mfocrf
        (31 << 26) | (1 << 20) | (144 << 1),  # mtocrf
        (19 << 26) | (20 << 21) | (1 << 11) | (16 << 1),  # bclr with BH
        (16 << 26) | (1 << 21),  # bc with a z bit set
        (19 << 26) | (16 << 21) | (528 << 1),  # bcctr decrementing CTR
        x(444, 1, 1, 1),  # or r1,r1,r1: a hint on some cores
        (19 << 26) | (257 << 1) | 1,  # crand with the reserved bit 31
        (19 << 26) | (1 << 21),  # mcrf with a reserved bit
        x(491, 3, 4, 5),  # divw by zero (r5 = 0)
        0,  # illegal
        0x00DDDD00,  # the kernel's breakpoint word
    ],
)
def test_refused(word: int) -> None:
    assert execute(word, regs(r4=0x80000000)) is None


def test_divides_with_undefined_results_are_refused() -> None:
    divw = x(491, 3, 4, 5)
    assert execute(divw, regs(r4=0x80000000, r5=0xFFFFFFFF)) is None
    assert execute(x(459, 3, 4, 5), regs(r4=1, r5=0)) is None


def test_an_xer_beyond_its_defined_bits_refuses_everything_and_mtxer_never_makes_one() -> None:
    addi = d(14, 3, 3, 1)
    assert execute(addi, regs(xer=0x00080000)) is None
    assert execute(spr(467, 4, 1), regs(r4=0x00040000)) is None
    assert execute(spr(467, 4, 1), regs(r4=SO | OV | CA | 0x7F)) is not None


# -- the plugin member ---------------------------------------------------------------------------


def _vm(core: str) -> VmHandle:
    elf = build(PACKAGE_DIR / "demo.S", cache_dir("booke-execute-test"))
    return default_registry().emulated_host(core).create_vm(str(elf))


def _ops(vm: VmHandle, core: str, policy: str = OwnershipPolicy.HOST_PRIORITY) -> BookeVcpuDebug:
    info = next(c for c in CORES if c.name == core)
    ops = BookeVcpuDebug(VcpuDebugRequest(INFO, info, vm, vm.vcpus[0], policy))
    dbg = ops.encode_guest_debug([], step=False, sw_breaks=True)
    if dbg is not None:  # guest priority makes no KVM_SET_GUEST_DEBUG at all
        vm.vcpus[0].set_guest_debug(dbg)
    ops.after_guest_debug()
    return ops


def _at(vm: VmHandle, word: int) -> int:
    """Put ``word`` at the vCPU's PC; return that PC."""
    rg = bytearray(vm.vcpus[0].get_regs())
    pc = int.from_bytes(rg[0:8], "big")
    vm.write_phys(pc, word.to_bytes(4, "big"))
    return pc


@pytest.mark.parametrize("core", ["e500mc", "e500v2"])
def test_the_member_writes_the_result_with_one_set_regs_and_refuses_a_store(core: str) -> None:
    vm = _vm(core)
    ops = _ops(vm, core)
    v = vm.vcpus[0]
    pc = _at(vm, d(14, 1, 1, 16))  # addi r1,r1,16
    before = bytes(v.get_regs())
    r1 = int.from_bytes(before[(17 + 1) * 8 : (17 + 2) * 8], "big")
    assert ops.execute_in_place(pc, vm.read_phys)
    after = bytes(v.get_regs())
    assert int.from_bytes(after[0:8], "big") == pc + 4
    assert int.from_bytes(after[(17 + 1) * 8 : (17 + 2) * 8], "big") == r1 + 16
    assert after[8:136] == before[8:136]  # CR, CTR, LR, XER, MSR, SRR0/1, PID, SPRGs
    pc = _at(vm, d(36, 3, 1, 0))  # stw r3,0(r1): a store is stepped
    before = bytes(v.get_regs())
    assert not ops.execute_in_place(pc, vm.read_phys)
    assert bytes(v.get_regs()) == before
    assert not ops.execute_in_place(pc + 4, vm.read_phys)  # not where the vCPU is


@pytest.mark.parametrize(
    "why",
    ["guest-priority", "64-bit", "not enabled", "guest IAC at pc"],
)
def test_the_member_refuses_and_changes_nothing(why: str) -> None:
    core = "e5500" if why == "64-bit" else "e500mc"
    vm = _vm(core)
    if why == "guest-priority":
        ops = _ops(vm, core, OwnershipPolicy.GUEST_PRIORITY)
    elif why == "not enabled":
        info = next(c for c in CORES if c.name == core)
        ops = BookeVcpuDebug(VcpuDebugRequest(INFO, info, vm, vm.vcpus[0]))
    else:
        ops = _ops(vm, core)
    pc = _at(vm, d(14, 3, 3, 1))
    if why == "guest IAC at pc":
        ops.guest_armed = {"iac1": pc}
    before = bytes(vm.vcpus[0].get_regs())
    assert not ops.execute_in_place(pc, vm.read_phys)
    assert bytes(vm.vcpus[0].get_regs()) == before


# -- the differential run ----------------------------------------------------------------------


@pytest.mark.parametrize(("core", "seed", "count"), [("e500mc", 1, 30000), ("e500v2", 2, 6000)])
def test_every_accepted_case_matches_a_single_step_on_unicorn(
    core: str, seed: int, count: int
) -> None:
    tally = diff.run(core, seed, count)
    assert tally.cases == count
    assert not tally.mismatches, "\n".join(str(m) for m in tally.mismatches[:5])
    assert tally.accepted > count * 0.7  # the subset is exercised, not refused wholesale
    assert tally.refused > count * 0.05  # and the near misses reach the refusals


def test_the_differential_run_catches_a_wrong_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong_carry(word: int, before: Regs) -> Regs | None:
        out = execute(word, before)
        if out is not None and word >> 26 == 12:  # addic: CA inverted
            return dataclasses.replace(out, xer=out.xer ^ CA)
        return out

    monkeypatch.setattr(diff, "execute", wrong_carry)
    tally = diff.run("e500mc", 3, 3000)
    assert tally.mismatches and all(m.word >> 26 == 12 for m in tally.mismatches)


# -- through a session ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [PointKind.SW_BREAK, PointKind.HW_BREAK])
@pytest.mark.parametrize(
    ("at", "in_place"), [("bp_here", True), ("bp_here+8", True), ("load_insn", False)]
)
def test_a_false_condition_is_carried_out_in_place_and_the_guest_computes_the_same(
    core: str, session: MakeSession, kind: PointKind, at: str, in_place: bool
) -> None:
    """``loop.S`` counts r4 to 100: at the ``addi`` and the ``blt`` (``bp_here+8``) every false
    hit is carried out in place, through a trap word and through an IAC alike; at the load each
    is stepped. Either way the guest ends with r4 = 100, as it does without a debugger."""
    m = Machine("loop", core)
    name, _, off = at.partition("+")
    addr = m.sym[name] + int(off or 0)
    io = HostIo()
    s = session(m.vm, core, exit_handler=io)
    s.insert_point(DebugPoint(kind, addr, 4), lambda _view: False)
    assert run_to_done(s, io)[-1][0] is StopKind.HALT
    assert io.done == 100
    assert s.state.stats.executed_in_place == (100 if in_place else 0)
