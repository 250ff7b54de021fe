"""One VM from the profile on the kit's bench, and every KVM_RUN the kit makes on it.

Each KVM_RUN runs on a thread of its own (the kit's vCPU thread), so that a run that never
returns (a kick that does nothing, a KVM_RUN that ignores ``immediate_exit``) fails its check
instead of hanging the suite. Timing decides only what the protocol cannot show, always with
generous bounds and in the direction that cannot fail a correct adapter: a correct KVM_RUN on
a guest without exits never returns uninvited, an ioctl behind ``vcpu->mutex`` never returns
while KVM_RUN runs, and a kicked KVM_RUN returns within :attr:`Bench.kick_timeout` (seconds;
only a lost kick takes that long).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ...kvm import constants as C
from ...kvm.uapi import AbiLayout, Field
from ...vcpu import VcpuHandle, VmHandle
from .profile import AdapterProfile

SETTLE = 0.2
"""Seconds a KVM_RUN gets to be inside the guest before the kit acts on it."""
WAITING = 0.3
"""Seconds an ioctl from another thread must go on waiting while KVM_RUN runs."""
KICK_TIMEOUT = 10.0
"""Seconds a kicked KVM_RUN may take to return; only a lost kick takes them."""


class KvmRun:
    """One KVM_RUN of a vCPU on a thread of its own; started when made."""

    def __init__(self, vcpu: VcpuHandle, call: Callable[[], Any] | None = None) -> None:
        self._call = call if call is not None else vcpu.run
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        started = threading.Event()

        def body() -> None:
            started.set()
            try:
                self.result = self._call()
            except BaseException as e:  # reported by the check that reads it
                self.error = e
            finally:
                self.finished.set()

        self.thread = threading.Thread(target=body, name="adapter-kit-vcpu", daemon=True)
        self.thread.start()
        started.wait()

    def returned_within(self, seconds: float) -> bool:
        return self.finished.wait(seconds)

    def value(self, what: str) -> Any:
        if self.error is not None:
            raise AssertionError(f"{what} raised {self.error!r}") from self.error
        return self.result


def exit_text(reason: object) -> str:
    return C.exit_name(reason) if isinstance(reason, int) else repr(reason)


class Bench:
    """A fresh VM of the profile and the kit's view of its vCPU 0; :meth:`close` frees it."""

    def __init__(self, profile: AdapterProfile, kick_timeout: float = KICK_TIMEOUT) -> None:
        self.profile = profile
        self.kick_timeout = kick_timeout
        self.vm: VmHandle = profile.make_vm()
        self._threads: list[KvmRun] = []
        vcpus = self.vm.vcpus
        assert vcpus, "the VM has no vCPU"
        self.vcpu: VcpuHandle = vcpus[0]
        self.layout: AbiLayout = self.vm.layout
        self.pc_reg: Field = self.layout.field("struct kvm_regs", profile.pc_field)
        self.exit_reason: Field = self.layout.field("struct kvm_run", "exit_reason")
        self.immediate_exit: Field = self.layout.field("struct kvm_run", "immediate_exit")

    # -- reading the vCPU ----------------------------------------------------------------------

    @property
    def pc(self) -> int:
        return self.pc_reg.get(self.vcpu.get_regs())

    def run_field(self, field: Field) -> int:
        return field.get(self.vcpu.kvm_run)

    # -- runs ------------------------------------------------------------------------------------

    def in_thread(self, call: Callable[[], Any]) -> KvmRun:
        """``call`` (a vCPU ioctl) on a thread of its own, tracked like a KVM_RUN."""
        run = KvmRun(self.vcpu, call)
        self._threads.append(run)
        return run

    def start(self) -> KvmRun:
        """KVM_RUN on a thread of its own."""
        return self.in_thread(self.vcpu.run)

    def settled(self, run: KvmRun, what: str) -> None:
        """``run`` is still in KVM_RUN after :data:`SETTLE` s: the guest spins inside it."""
        if run.returned_within(SETTLE):
            raise AssertionError(
                f"{what}: KVM_RUN returned {exit_text(run.value('KVM_RUN'))} with nobody "
                "kicking it (the profile's guest must run without exits, and a kick must be "
                "consumed by the one KVM_RUN it ends)"
            )

    def kicked(self, run: KvmRun, what: str) -> int:
        """Kick the vCPU and return what ``run`` returned; a run that does not return within
        :attr:`kick_timeout` fails the check."""
        self.vcpu.kick()
        if not run.returned_within(self.kick_timeout):
            raise AssertionError(
                f"{what}: KVM_RUN did not return within {self.kick_timeout}s of a kick "
                "(the kick does not reach a thread inside KVM_RUN)"
            )
        reason: int = run.value("KVM_RUN")
        return reason

    def run_once(self, what: str) -> tuple[int, bool]:
        """One KVM_RUN; if it has not returned after :attr:`kick_timeout` s the kit kicks it.
        Returns (exit reason, whether the kit had to kick)."""
        run = self.start()
        if run.returned_within(self.kick_timeout):
            reason: int = run.value("KVM_RUN")
            return reason, False
        return self.kicked(run, what), True

    def close(self) -> None:
        """Get every run the kit started out of KVM_RUN, then release the VM. A run that will
        not return within :data:`KICK_TIMEOUT` of a last kick (whatever the class's own
        ``kick_timeout``: a late kick still lets the VM go) fails the check, and the VM is left
        as it is."""
        stuck = [r for r in self._threads if not r.finished.is_set()]
        if stuck:
            self.vcpu.kick()
            stuck = [r for r in stuck if not r.returned_within(KICK_TIMEOUT)]
        if stuck:
            raise AssertionError(
                f"{len(stuck)} vCPU ioctl(s) the kit started never returned, even after a "
                "kick; the VM was not released"
            )
        self.profile.release(self.vm)
