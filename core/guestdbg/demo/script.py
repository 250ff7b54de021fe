"""The demo's steps: a real GDB on an emulated host, each step checked, then explained.

The guest comes from the arch plugin (:class:`~guestdbg.demo.guest.DemoGuest`); everything
else is generic: GDB is driven through MI (:mod:`guestdbg.demo.gdbmi`), the stub and the
session are the product's own, and the host side (guest RAM, filter statistics) is read through
the same interfaces a VMM has. Every step checks what GDB answered and what the host saw; the
first surprise ends the demo with :class:`DemoFailed`, whose message is one line.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import GuestDebugError
from ..gdb.target import GdbArch
from ..vcpu import VmHandle
from .gdbmi import GdbMi, GdbReply
from .guest import DemoGuest
from .transcript import Transcript

PROGRESS_TIMEOUT = 10.0


class DemoFailed(GuestDebugError):
    """A demo step did not behave as expected; the message names the step and what differed."""


@dataclass
class HostView:
    """Guest memory as the VMM sees it, at addresses the guest uses (translated while the
    guest was stopped, before the debugger arrived)."""

    vm: VmHandle
    byteorder: str
    gpa: dict[int, int] = field(default_factory=dict)
    code: dict[int, bytes] = field(default_factory=dict)
    """Guest code as loaded from the ELF, by guest address: the reference after detach."""

    def map(self, addr: int, size: int = 1) -> None:
        vcpu = self.vm.vcpus[0]
        for a in range(addr & ~0xFFF, addr + size, 0x1000):
            if a not in self.gpa:
                gpa = vcpu.translate(a)
                if gpa is None:
                    raise DemoFailed(f"guest address {a:#x} is not mapped")
                self.gpa[a] = gpa

    def read(self, addr: int, size: int) -> bytes:
        self.map(addr, size)
        out = b""
        while size:
            n = min(size, 0x1000 - (addr & 0xFFF))
            out += self.vm.read_phys(self.gpa[addr & ~0xFFF] + (addr & 0xFFF), n)
            addr += n
            size -= n
        return out

    def word(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), self.byteorder)  # type: ignore[arg-type]

    def snapshot_code(self, ranges: list[tuple[int, int]]) -> None:
        for addr, size in ranges:
            self.code[addr] = self.read(addr, size)

    def code_changes(self) -> list[int]:
        """Guest addresses where the code differs from the ELF's."""
        changed = []
        for addr, original in self.code.items():
            now = self.read(addr, len(original))
            changed += [
                addr + i for i, (a, b) in enumerate(zip(now, original, strict=True)) if a != b
            ]
        return changed

    def original_word(self, addr: int) -> bytes:
        for start, data in self.code.items():
            if start <= addr and addr + 4 <= start + len(data):
                return data[addr - start : addr - start + 4]
        raise DemoFailed(f"{addr:#x} is not in the guest's code")


_BREAK_AT = re.compile(r"(?:Breakpoint|breakpoint) \d+ at (0x[0-9a-f]+)")
_VALUE = re.compile(r"^\$\d+ = (0x[0-9a-f]+|-?\d+)\s*$", re.M)
_X_LINE = re.compile(r"^\s*(?:=>\s*)?(0x[0-9a-f]+)", re.M)
_X_WORD = re.compile(r":\s*(0x[0-9a-f]+)\s*$", re.M)
_STOP_PACKET = re.compile(r"Packet received: (T[0-9a-f]{2}[^\s\\]*)")


class Demo:
    def __init__(
        self,
        guest: DemoGuest,
        addr: Mapping[str, int],
        host: HostView,
        gdb_arch: GdbArch,
        gdb: GdbMi,
        port: int,
        out: Transcript,
    ) -> None:
        self.guest = guest
        self.addr = addr
        self.host = host
        self.gdb_arch = gdb_arch
        self.gdb = gdb
        self.port = port
        self.t = out
        self.step_name = ""

    # -- helpers -----------------------------------------------------------------------------

    def tell(self, command: str, show: bool = True) -> GdbReply:
        reply = self.gdb.run(command)
        if show:
            self.t.told(command, reply.text)
        if not reply.ok:
            self.fail(f"GDB refused {command!r}: {reply.error}")
        return reply

    def fail(self, what: str) -> None:
        raise DemoFailed(f"step {self.step_name!r}: {what}")

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.fail(what)

    def expect_stop(self, r: GdbReply, reason: str, pc: int | None) -> None:
        self.expect(r.stopped is not None, f"{r.command!r} did not stop the guest")
        got = (r.stop_reason, r.stop_pc, r.stop_thread)
        want_pc = pc if pc is not None else r.stop_pc
        if got != (reason, want_pc, 1):
            self.fail(f"expected a {reason} stop on thread 1 at {want_pc:#x}, got {got}")

    def value(self, r: GdbReply) -> int:
        m = _VALUE.search(r.console)
        if m is None:
            self.fail(f"no value in GDB's answer to {r.command!r}: {r.console!r}")
        assert m is not None
        return int(m.group(1), 0)

    def sym(self, role: str) -> str:
        return self.guest.symbols[role]

    def int_at(self, role: str) -> str:
        return f"*(int *)&{self.sym(role)}"

    def explain(self, generic: str) -> None:
        self.t.why(generic)
        arch = self.guest.explain.get(self.step_name)
        if arch:
            self.t.why(arch)

    # -- the steps ---------------------------------------------------------------------------

    def run(self) -> None:
        for name, step in (
            ("attach", self.attach),
            ("sw_break", self.sw_break),
            ("step", self.step),
            ("hw_break", self.hw_break),
            ("watch", self.watch),
            ("guest_trap", self.guest_trap),
            ("detach", self.detach),
        ):
            self.step_name = name
            step()

    def attach(self) -> None:
        self.t.step("GDB attaches")
        for command in self.guest.gdb_setup:
            self.tell(command)
        self.tell("set breakpoint always-inserted on")
        r = self.tell(f"target remote 127.0.0.1:{self.port}")
        self.expect(r.stopped is not None and r.stop_thread == 1, "no stop reported on attach")
        self.t.host(f"the stub stopped every vCPU; GDB shows thread 1 at {r.stop_pc:#x}")
        self.explain(
            "A debugger connecting stops the guest (all-stop). 'always-inserted' makes GDB "
            "leave its breakpoints in the guest while it is stopped, so what follows shows "
            "them in place."
        )

    def sw_break(self) -> None:
        self.t.step("Software breakpoint")
        r = self.tell(f"break {self.sym('sw_break')}")
        m = _BREAK_AT.search(r.console)
        self.expect(m is not None, "GDB did not say where it put the breakpoint")
        assert m is not None
        bp = int(m.group(1), 16)
        r = self.tell("continue")
        self.expect_stop(r, "breakpoint-hit", bp)
        lines = self.tell("x/2i $pc")
        addrs = [int(a, 16) for a in _X_LINE.findall(lines.console)]
        self.expect(len(addrs) == 2 and addrs[0] == bp, "x/2i did not list two instructions")
        self.next_pc = addrs[1]
        shown = self.tell("x/1xw $pc")
        m = _X_WORD.search(shown.console)
        self.expect(m is not None, "x/1xw printed no word")
        assert m is not None
        shown_word = int(m.group(1), 16)
        in_ram = self.host.read(bp, 4)
        original = self.host.original_word(bp)
        self.expect(in_ram != original, f"no trap word in guest RAM at {bp:#x}")
        self.expect(
            shown_word == int.from_bytes(original, self.host.byteorder),  # type: ignore[arg-type]
            f"GDB read {shown_word:#x} at {bp:#x}, not the original {original.hex()}",
        )
        self.bp = bp
        self.t.host(
            f"guest RAM at {bp:#x} holds {in_ram.hex()}, the trap word; GDB read "
            f"{original.hex()}, the original instruction"
        )
        self.explain(
            "A software breakpoint is a trap word written over the instruction. The exit it "
            "causes matched the host's breakpoint table, so it was reported to GDB; every "
            "read of guest memory shows the saved original word, never the trap."
        )

    def step(self) -> None:
        self.t.step("Single step")
        r = self.tell("stepi")
        self.expect_stop(r, "end-stepping-range", self.next_pc)
        self.t.host(f"one instruction ran: {self.bp:#x} -> {self.next_pc:#x}, same thread")
        self.explain(
            "The vCPU sat on the host's own trap word: the session put the original "
            "instruction back for exactly one single-stepped KVM_RUN on that vCPU alone, then "
            "re-armed the trap."
        )

    def hw_break(self) -> None:
        self.t.step("Hardware breakpoint")
        self.tell("delete")
        target = self.addr["hw_break"]
        self.tell(f"hbreak *{self.sym('hw_break')}")
        r = self.tell("continue")
        self.expect_stop(r, "breakpoint-hit", target)
        changed = self.host.code_changes()
        self.expect(not changed, f"guest code changed at {[hex(a) for a in changed[:4]]}")
        self.t.host(f"stopped at {target:#x}; guest code is byte-identical to the ELF")
        self.explain(
            "A hardware breakpoint is an instruction-address compare register, armed through "
            "KVM_SET_GUEST_DEBUG: nothing is written to guest memory."
        )

    def watch(self) -> None:
        self.t.step("Write watchpoint")
        self.tell("delete")
        watched = self.addr["watched"]
        store = self.addr["watch_store"]
        self.tell(f"watch {self.int_at('watched')}")
        self.tell("set debug remote 1", show=False)
        r = self.gdb.run("continue")
        self.tell("set debug remote 0", show=False)
        self.t.told("continue", r.text)
        self.expect(r.ok and r.stop_reason == "watchpoint-trigger", f"no watch stop: {r.stopped}")
        values = (r.stopped or {}).get("value") or {}
        old, new = int(values.get("old", -1)), int(values.get("new", -1))
        self.expect(new == old + 1, f"the watched counter went {old} -> {new}")
        packet = next((p for p in _STOP_PACKET.findall(r.log) if ";watch:" in p), None)
        self.expect(packet is not None, "no watch stop reply in GDB's packet log")
        assert packet is not None
        fields = dict(f.split(":", 1) for f in packet[3:].split(";") if ":" in f)
        reported = int(fields.get("watch", "-1"), 16)
        pc_hex = fields.get(f"{self.gdb_arch.pc_regnum:02x}", "")
        stub_pc = int.from_bytes(bytes.fromhex(pc_hex), self.gdb_arch.byteorder) if pc_hex else -1
        self.expect(reported == watched, f"the stop named {reported:#x}, not {watched:#x}")
        self.expect(stub_pc == store, f"the stop's PC is {stub_pc:#x}, not the store {store:#x}")
        self.t.host(f"the stub's stop reply: {packet}")
        self.t.host(
            f"PC {stub_pc:#x} is the store ({self.sym('watch_store')}); GDB stepped over it and "
            f"shows {r.stop_pc:#x}; {self.sym('watched')} went {old} -> {new}"
        )
        self.explain(
            "A watchpoint is a data-address compare register. Like the hardware, guestdbg "
            "reports the instruction that made the access."
        )

    def guest_trap(self) -> None:
        self.t.step("The guest's own breakpoint instruction, handed back to the guest")
        self.tell("delete")
        count = self.int_at("guest_trap_count")
        before = self.value(self.tell(f"print {count}"))
        self.tell(f"set var {self.int_at('guest_trap_every')} = 1")
        after = self.addr["after_guest_trap"]
        self.tell(f"break *{self.sym('after_guest_trap')}")
        rounds = 2
        for n in range(1, rounds + 1):
            r = self.tell("continue")
            self.expect_stop(r, "breakpoint-hit", after)
            got = self.value(self.tell(f"print {count}"))
            self.expect(got == before + n, f"the guest's handler count is {got}, not {before + n}")
        syndrome = self.value(self.tell(f"print/x {self.int_at('guest_trap_syndrome')}"))
        want = self.guest.guest_trap_syndrome
        self.expect(syndrome == want, f"the guest's handler saw {syndrome:#x}, not {want:#x}")
        kernel_traps = self.value(self.tell(f"print {self.int_at('kernel_trap_count')}"))
        stats = self.tell("monitor stats")
        reinjected = _reinjected(stats.target)
        self.expect(reinjected == rounds, f"monitor stats says reinjected={reinjected}")
        self.tell("monitor points")
        self.t.host(
            f"{self.sym('guest_trap')} ran {rounds} times with a host breakpoint in place: "
            f"{rounds} exits with no host breakpoint at that address, {rounds} re-injected; "
            f"the guest's handler counted them ({self.sym('guest_trap_count')} "
            f"{before} -> {before + rounds}) and saw {syndrome:#x}; its tw trap, taken "
            f"{kernel_traps}x meanwhile, never reached guestdbg"
        )
        self.explain(
            "A guest kernel's own breakpoint instruction (BUG(), kgdb) exits from KVM_RUN "
            "exactly like the host's while the host has software breakpoints armed. The "
            "reinjection filter finds no host point there and delivers the exception the "
            "hardware would have raised, so the guest's handler runs as if no debugger were "
            "attached."
        )

    def detach(self) -> None:
        self.t.step("Detach")
        r = self.tell("detach")
        self.expect("detached" in r.console, "GDB did not detach")
        changed = self.host.code_changes()
        self.expect(not changed, f"guest code changed at {[hex(a) for a in changed[:4]]}")
        progress = self.addr["progress"]
        first = self.host.word(progress)
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        now = first
        while now == first and time.monotonic() < deadline:
            time.sleep(0.01)
            now = self.host.word(progress)
        self.expect(now != first, f"the guest did not run on after detach ({first})")
        self.t.host(
            f"guest code is byte-identical to the ELF; the guest runs on "
            f"({self.sym('progress')} {first} -> {now})"
        )
        self.explain(
            "Detach removes every trap word, disarms the debug registers on every vCPU and "
            "resumes the guest, whether GDB says 'detach', quits, or dies."
        )


def _reinjected(monitor_text: str) -> int:
    try:
        doc = json.loads(monitor_text)
        return int(doc["filter"]["reinjected"])
    except (ValueError, KeyError, TypeError):
        return -1
