"""guestdbg's own vCPU threads, for a VMM that hands its vCPUs to the session.

Each thread runs the loop a VMM's own vCPU thread runs (:mod:`.port`), with the VMM's device
model given as ``exit_handler``. One more thing only guestdbg's threads do: a resume of a
single vCPU is first driven by the caller's thread (*inline*), because most steps and hits end
within microseconds and handing them to the vCPU thread and back costs two thread wake-ups; a
run still going when the watchdog's limit passes (a guest that sleeps in the kernel, or simply
runs on) is kicked and goes on on the vCPU's own thread, so the caller (the GDB server thread,
which must see a Ctrl-C) is held up for that long at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..kvm.constants import exit_name
from .port import Next, VcpuPort

log = logging.getLogger(__name__)

ExitHandler = Callable[[int, int, memoryview], bool]
"""``handler(vcpu_index, exit_reason, kvm_run) -> keep running?`` for exits that are not the
debugger's (MMIO, I/O, HLT...): the VMM's own device model."""


class Watchdog:
    """Kicks a vCPU that runs inline for longer than ``limit`` seconds.

    It polls (every ``period``) instead of being woken for each run: a wake-up per run made the
    woken thread contend for the GIL with the run itself and cost more than the thread hand-off
    the inline run saves. The polling thread exists only while inline runs are being made and
    ends after a second without one."""

    def __init__(self, limit: float = 0.05, period: float = 0.02) -> None:
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._armed: tuple[VcpuPort, float] | None = None
        self._thread: threading.Thread | None = None

    def arm(self, port: VcpuPort) -> None:
        with self._lock:
            self._armed = (port, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="guestdbg-watchdog", daemon=True
                )
                self._thread.start()

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self.period)
            now = time.monotonic()
            with self._lock:
                armed = self._armed
                if armed is None:
                    if now - idle_since > 1.0:
                        self._thread = None
                        return
                    continue
                idle_since = now
                port, since = armed
                if now - since > self.limit:
                    port.overdue = True
                    port.handle.kick()
                    self._armed = None


class OwnedThreads:
    """One daemon thread per vCPU, each running the port loop with ``exit_handler``."""

    def __init__(self, ports: list[VcpuPort], exit_handler: ExitHandler) -> None:
        self.ports = ports
        self.exit_handler = exit_handler
        self.watchdog = Watchdog()
        control = ports[0].control
        for p in ports:
            control.own[p.index] = threading.Condition(control.lock)
        self._threads = [
            threading.Thread(target=self._main, args=(p,), name=f"guestdbg-vcpu{p.index}",
                             daemon=True)
            for p in ports
        ]  # fmt: skip
        for t in self._threads:
            t.start()

    def _main(self, port: VcpuPort) -> None:
        while port.before_run():
            self._run_once(port)

    def _run_once(self, port: VcpuPort) -> Next:
        try:
            reason = port.handle.run()
        except Exception as e:  # a failed KVM_RUN must stop the VM, not kill the thread
            port.fail(e)
            return Next.RUN
        nxt = port.after_exit(reason)
        if nxt is Next.DEVICE:
            try:
                keep_running = self.exit_handler(port.index, reason, port.handle.kvm_run)
            except Exception as e:
                port.fail(e)
                return Next.RUN
            if not keep_running:
                port.halt(
                    f"{exit_name(reason)} on vCPU {port.index}: the device model stopped the guest"
                )
        return nxt

    def run_inline(self, port: VcpuPort) -> None:
        """Drive ``port`` on the caller's thread until it parks or the watchdog hands it over
        (its command must have been given with ``port.inline`` set)."""
        self.watchdog.arm(port)
        try:
            while port.before_run(inline=True):
                if self._run_once(port) is Next.HANDOVER:
                    return
        finally:
            self.watchdog.disarm()
            if port.inline:
                port.handover()

    def join(self, timeout: float = 5.0) -> None:
        """After the session closed: the threads end at their next ``before_run``."""
        for t in self._threads:
            t.join(timeout)
