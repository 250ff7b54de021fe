"""The vCPU state ioctls: KVM_SET_GUEST_DEBUG and single steps, GET/SET_REGS and SREGS, ONE_REG,
and the optional interfaces (KVM_GET/SET_VCPU_EVENTS, KVM_GET/SET_DEBUGREGS) where present.

Every structure is the layout's, byte for byte: the kernel copies exactly ``sizeof`` bytes, and
an adapter that accepts another size would hand the kernel (or its model) a structure shifted
or cut short. A refused call is a :class:`~guestdbg.errors.GuestDebugError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import GuestDebugError, KernelError
from ...kvm import constants as C
from .bench import Bench, exit_text

STEPS = 3


def wrong_sizes(size: int) -> tuple[int, ...]:
    return (0, size - 1, size + 1, size + 8)


def check_refused(call: Callable[[bytes], None], data: bytes, what: str) -> None:
    """``call(data)`` for each wrong size of ``data`` (cut short, or zeros appended) raises a
    GuestDebugError."""
    for n in wrong_sizes(len(data)):
        arg = data[:n] if n <= len(data) else data + bytes(n - len(data))
        try:
            call(arg)
        except GuestDebugError:
            continue
        except Exception as e:
            raise AssertionError(
                f"{what} of {n} bytes (not {len(data)}) raised {type(e).__name__}, not a "
                "guestdbg.errors.GuestDebugError"
            ) from e
        raise AssertionError(f"{what} of {n} bytes was accepted; the structure has {len(data)}")


def guest_debug(bench: Bench, control: int) -> bytes:
    dbg = bench.layout.new("struct kvm_guest_debug")
    bench.layout.field("struct kvm_guest_debug", "control").put(dbg, control)
    return bytes(dbg)


def set_guest_debug(bench: Bench, control: int) -> None:
    """KVM_SET_GUEST_DEBUG, then the registers written back as QEMU writes them before every
    KVM_RUN (a BookE kernel forces MSR[DE] only at the next register write)."""
    bench.vcpu.set_guest_debug(guest_debug(bench, control))
    bench.vcpu.set_regs(bytes(bench.vcpu.get_regs()))


def check_runs_unstepped(bench: Bench, what: str) -> None:
    run = bench.start()
    bench.settled(run, what)
    reason = bench.kicked(run, what)
    assert reason == C.KVM_EXIT_INTR, f"{what}: KVM_RUN returned {exit_text(reason)}"


STEP_CONTROL = C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP


def check_guest_debug_sizes(bench: Bench) -> None:
    set_guest_debug(bench, 0)
    step = guest_debug(bench, STEP_CONTROL)
    check_refused(bench.vcpu.set_guest_debug, step, "KVM_SET_GUEST_DEBUG")
    bench.vcpu.set_regs(bytes(bench.vcpu.get_regs()))
    check_runs_unstepped(
        bench, "after KVM_SET_GUEST_DEBUG(ENABLE|SINGLESTEP) of wrong sizes was refused"
    )


def check_single_step(bench: Bench) -> None:
    set_guest_debug(bench, STEP_CONTROL)
    for n in range(STEPS):
        pc = bench.pc
        what = f"single step {n + 1} from {pc:#x}"
        reason, rekicked = bench.run_once(what)
        assert not rekicked and reason == C.KVM_EXIT_DEBUG, (
            f"{what} with KVM_GUESTDBG_ENABLE|KVM_GUESTDBG_SINGLESTEP: KVM_RUN returned "
            f"{exit_text(reason)}{' after the kit kicked it' if rekicked else ''}, not "
            "KVM_EXIT_DEBUG"
        )
        seen = bench.exit_reason.get(bench.vcpu.kvm_run)
        assert seen == C.KVM_EXIT_DEBUG, f"{what}: kvm_run's exit_reason is {exit_text(seen)}"
        assert bench.pc != pc, f"{what}: KVM_EXIT_DEBUG, but the PC did not move"
    set_guest_debug(bench, 0)
    check_runs_unstepped(bench, "after KVM_SET_GUEST_DEBUG(0) turned stepping off")


def check_regs_round_trip(bench: Bench) -> None:
    pc = bench.pc

    def move_pc(regs: bytearray) -> None:
        bench.pc_reg.put(regs, pc + 4)

    vcpu = bench.vcpu
    size = bench.layout.sizeof("struct kvm_regs")
    check_structure_round_trip(vcpu.get_regs, vcpu.set_regs, size, "REGS", change=move_pc)


def check_sregs_round_trip(bench: Bench) -> None:
    vcpu = bench.vcpu
    size = bench.layout.sizeof("struct kvm_sregs")
    check_structure_round_trip(vcpu.get_sregs, vcpu.set_sregs, size, "SREGS")


UNDEFINED_ONE_REG = C.KVM_REG_SIZE_U64 | 0x00FF_0000_DEAD_BEEF
"""A ONE_REG id of no arch (arch field 0, a register number nobody defines)."""


def check_one_reg_unknown(bench: Bench) -> None:
    for what, call in (
        ("KVM_GET_ONE_REG", lambda: bench.vcpu.get_one_reg(UNDEFINED_ONE_REG)),
        ("KVM_SET_ONE_REG", lambda: bench.vcpu.set_one_reg(UNDEFINED_ONE_REG, 0)),
    ):
        try:
            call()
        except KernelError:
            continue
        except Exception as e:
            raise AssertionError(
                f"{what} of an undefined id raised {type(e).__name__}, not KernelError"
            ) from e
        raise AssertionError(f"{what} of the undefined id {UNDEFINED_ONE_REG:#x} was accepted")


def check_structure_round_trip(
    get: Callable[[], bytearray],
    put: Callable[[bytes], None],
    size: int,
    what: str,
    change: Callable[[bytearray], None] | None = None,
) -> None:
    """``get`` returns a bytearray of ``size`` bytes; ``put`` of them (and of a copy
    ``change`` changed) reads back the same; wrong sizes (of the changed copy) are refused and
    change nothing."""
    got = get()
    assert isinstance(got, bytearray) and len(got) == size, (
        f"KVM_GET_{what} returned {type(got).__name__} of {len(got)} bytes, not a bytearray of "
        f"{size}"
    )
    put(bytes(got))
    assert get() == got, f"KVM_SET_{what} of what KVM_GET_{what} read changed it"
    changed = bytearray(got)
    if change is not None:
        change(changed)
        put(bytes(changed))
        assert get() == changed, f"KVM_SET_{what} of a changed value did not read back"
        put(bytes(got))
        assert get() == got, f"KVM_SET_{what} could not restore the value read"
    check_refused(put, bytes(changed), f"KVM_SET_{what}")
    assert get() == got, f"a refused KVM_SET_{what} changed it"
