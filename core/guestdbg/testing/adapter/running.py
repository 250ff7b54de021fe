"""The vCPU fd's run, kick and lock semantics, checked through the protocol alone.

What ``/dev/kvm`` does (``virt/kvm/kvm_main.c kvm_vcpu_ioctl``, the arch's
``kvm_arch_vcpu_ioctl_run``) and :mod:`guestdbg.vcpu` promises: ``immediate_exit`` makes
KVM_RUN return KVM_EXIT_INTR before entering the guest; a kick (``immediate_exit`` plus a signal
to the thread in KVM_RUN, or whatever the VMM uses) ends a running KVM_RUN with KVM_EXIT_INTR,
or the next one at once, and is consumed by that one run; every other vCPU ioctl from another
thread waits while KVM_RUN runs (``vcpu->mutex``), a second KVM_RUN too. The session's all-stop
is built on exactly these: a kick that is lost leaves a vCPU running while the debugger thinks
the VM is stopped; an ioctl that does not wait reads registers that are already stale.
"""

from __future__ import annotations

from ...kvm import constants as C
from .bench import WAITING, Bench, exit_text


def _intr(reason: int, what: str) -> None:
    assert reason == C.KVM_EXIT_INTR, (
        f"{what}: KVM_RUN returned {exit_text(reason)}, not KVM_EXIT_INTR"
    )


def _view_says_intr(bench: Bench, view: memoryview, what: str) -> None:
    seen = bench.exit_reason.get(view)
    assert seen == C.KVM_EXIT_INTR, (
        f"{what}: the kvm_run view taken before KVM_RUN reads exit_reason {exit_text(seen)}; "
        "kvm_run must be a live view of the vCPU's shared area"
    )
    left = bench.immediate_exit.get(view)
    assert left == 0, (
        f"{what}: immediate_exit is {left} after the run the kick ended; the kick must be "
        "consumed by that one run"
    )


def check_kick_before_run(bench: Bench) -> None:
    what = "kick, then KVM_RUN"
    view = bench.vcpu.kvm_run
    bench.exit_reason.put(view, C.KVM_EXIT_UNKNOWN)
    before = bytes(bench.vcpu.get_regs())
    bench.vcpu.kick()
    reason, rekicked = bench.run_once(what)
    assert not rekicked, (
        f"{what}: the kick before KVM_RUN was lost; KVM_RUN ran the guest until the kit kicked "
        f"it again {bench.kick_timeout}s later (it must return KVM_EXIT_INTR at once)"
    )
    _intr(reason, what)
    _view_says_intr(bench, view, what)
    assert bytes(bench.vcpu.get_regs()) == before, (
        f"{what}: the registers changed; KVM_RUN must return before running a guest instruction"
    )


def check_immediate_exit(bench: Bench) -> None:
    what = "immediate_exit set by the VMM, then KVM_RUN"
    before = bytes(bench.vcpu.get_regs())
    bench.immediate_exit.put(bench.vcpu.kvm_run, 1)
    reason, rekicked = bench.run_once(what)
    assert not rekicked, (
        f"{what}: KVM_RUN ignored immediate_exit and ran the guest until the kit kicked it "
        f"{bench.kick_timeout}s later"
    )
    _intr(reason, what)
    assert bytes(bench.vcpu.get_regs()) == before, (
        f"{what}: the registers changed; KVM_RUN must return before running a guest instruction"
    )


def check_kick_ends_a_running_run(bench: Bench) -> None:
    what = "a kick from another thread while KVM_RUN runs"
    view = bench.vcpu.kvm_run
    run = bench.start()
    bench.settled(run, what)
    _intr(bench.kicked(run, what), what)
    _view_says_intr(bench, view, what)
    what = "the KVM_RUN after a kicked one"
    run = bench.start()
    bench.settled(run, what)
    _intr(bench.kicked(run, what), what)


def check_ioctls_wait_for_run(bench: Bench) -> None:
    run = bench.start()
    bench.settled(run, "KVM_RUN with vCPU ioctls from other threads")
    regs = bench.in_thread(bench.vcpu.get_regs)
    sregs = bench.in_thread(bench.vcpu.get_sregs)
    calls = (("KVM_GET_REGS", regs), ("KVM_GET_SREGS", sregs))
    waited = {name: not r.returned_within(WAITING) for name, r in calls}
    still = not run.finished.is_set()
    what = "KVM_RUN kicked while ioctls from other threads waited"
    _intr(bench.kicked(run, what), what)
    for name, r in calls:
        assert r.returned_within(bench.kick_timeout), f"{name} never returned after KVM_RUN did"
        r.value(name)
    assert still, "KVM_RUN returned while other threads' ioctls waited, with nobody kicking it"
    early = [name for name, w in waited.items() if not w]
    assert not early, (
        f"{', '.join(early)} from another thread returned while KVM_RUN was running; every vCPU "
        "ioctl must wait for KVM_RUN to return (the kernel's vcpu->mutex)"
    )
    assert bytes(regs.result) == bytes(bench.vcpu.get_regs()), (
        "KVM_GET_REGS that waited for KVM_RUN did not read the stopped vCPU's registers"
    )


def check_second_run_waits(bench: Bench) -> None:
    first = bench.start()
    bench.settled(first, "the first KVM_RUN")
    second = bench.start()
    assert not second.returned_within(WAITING), (
        f"a second KVM_RUN from another thread returned "
        f"{exit_text(second.value('the second KVM_RUN'))} while the first ran; it must wait "
        "for the first (vcpu->mutex)"
    )
    _intr(bench.kicked(first, "the first KVM_RUN"), "the first KVM_RUN")
    bench.settled(second, "the second KVM_RUN, after the first was kicked")
    _intr(bench.kicked(second, "the second KVM_RUN"), "the second KVM_RUN")
