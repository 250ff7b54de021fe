"""The host-step property through the real GDB (issue 12): random e500mc programs from the
fidelity generator, debugged by gdb-multiarch with a seeded random schedule of ``break``,
``hbreak``, ``watch``/``rwatch``/``awatch``, ``stepi`` (on and just before the raising
instructions too), ``continue`` and ``delete``, with 1 and 2 vCPUs (threads picked at random
under ``scheduler-locking on``). After detach the guest's code is byte-identical and its data,
handler counters and handler log equal an undebugged run's. The schedule is printed on failure
with the program's seed; ``tests/session/test_host_steps_random.py`` is the same property
through the Session API, with hypothesis shrinking."""

from __future__ import annotations

import random
import re

import pytest
from session.random_programs import (
    Built,
    built,
    data_words,
    differences,
    executed,
    image,
    new_vm,
    undebugged,
)

from guestdbg.demo.gdbmi import GdbMi
from guestdbg.gdb.server import GdbServer
from guestdbg.session import Session

from .served import NEEDS_GDB

pytestmark = NEEDS_GDB

SEEDS = {1: [3, 11, 29, 47], 2: [5, 17]}
ROUNDS = 8
IACS = DACS = 2


def schedule(b: Built, rng: random.Random) -> list[str]:
    """Rounds of GDB commands: a few points, mostly on code the program executes next (so the
    continues stop at them), a few ``stepi`` and a ``continue``, sometimes a ``delete``. At
    most two hardware breakpoints and two watchpoints live at once (the e500mc has two IACs
    and two DACs), so GDB never has to give up a resume."""
    lay = b.layout
    code = list(executed(b.seed, b.vcpus))
    words = data_words(lay)
    out: list[str] = []
    live: list[str] = []
    ahead = 0
    for _ in range(ROUNDS):
        for n in range(rng.randint(1, 3)):
            kinds = (
                ["break", "hbreak"] if n == 0 else ["break", "hbreak", "watch", "rwatch", "awatch"]
            )
            kind = rng.choice(kinds)
            hw = "watch" if kind.endswith("watch") else kind
            if hw != "break" and sum(k == hw for k in live) >= (IACS if hw == "hbreak" else DACS):
                continue
            if hw == "watch":
                out.append(f"{kind} *(int *){rng.choice(words):#x}")
            else:
                window = code[ahead : ahead + 8] or code
                addr = rng.choice(window)
                if addr + 4 in lay.raising and rng.random() < 0.5:
                    addr += 4  # on the raising instruction itself
                out.append(f"{kind} *{addr:#x}")
            live.append(hw)
        thread = rng.randrange(b.vcpus) + 1
        out += [f"stepi {thread}"] * rng.randint(0, 3)
        out.append(f"continue {rng.randrange(b.vcpus) + 1}")
        if live and rng.random() < 0.4:
            n = rng.randrange(len(live))
            out.append(f"delete-nth {n}")
            live.pop(n)
        ahead += rng.randint(2, 8)
    return out


class Run:
    def __init__(self, b: Built) -> None:
        self.b = b
        self.vm = new_vm(b)
        self.session = Session(self.vm, "e500mc")  # type: ignore[arg-type]
        self.server = GdbServer(self.session, ("127.0.0.1", 0))
        self.server.start()
        port = self.server.bound_address[1]  # type: ignore[index]
        self.g = GdbMi(b.elf, timeout=60)
        self.g.check("set endian big")
        self.g.check(f"target remote 127.0.0.1:{port}")
        self.g.check("set scheduler-locking on")
        self.numbers: list[int] = []  # GDB's numbers of the live points, in creation order
        self.at_done: set[int] = set()
        self.g.check(f"break *{b.layout.done:#x}")  # number 1, never deleted: the end

    def command(self, cmd: str) -> None:
        what, arg = cmd.split(" ", 1)
        if what == "delete-nth":
            self.g.check(f"delete {self.numbers.pop(int(arg))}")
            return
        if what in ("stepi", "continue"):
            thread = int(arg)
            if thread in self.at_done:
                return
            self.g.check(f"thread {thread}")
            r = self.g.check(what)
            if r.stop_pc == self.b.layout.done:
                self.at_done.add(r.stop_thread or thread)
            return
        r = self.g.check(cmd)
        number = re.search(
            r"^(?:Hardware assisted breakpoint|Breakpoint|\S.*atchpoint) (\d+)", r.console, re.M
        )
        assert number is not None, (cmd, r.console)
        self.numbers.append(int(number.group(1)))

    def finish(self) -> tuple[bytes, bytes]:
        for n in self.numbers:
            self.g.check(f"delete {n}")
        for thread in range(1, self.b.vcpus + 1):
            if thread not in self.at_done:
                self.g.check(f"thread {thread}")
                r = self.g.check("continue")
                assert r.stop_pc == self.b.layout.done, (self.b.seed, r.console)
        self.g.check("detach")
        self.g.close()
        self.server.close()
        self.session.close()
        return image(self.vm, self.b.layout)


@pytest.mark.parametrize(("vcpus", "seed"), [(v, s) for v, seeds in SEEDS.items() for s in seeds])
def test_random_gdb_sessions_leave_random_programs_computing_what_they_compute_alone(
    vcpus: int, seed: int
) -> None:
    b = built(seed, vcpus)
    commands = schedule(b, random.Random(seed))
    run = Run(b)
    try:
        for cmd in commands:
            run.command(cmd)
        text, data = run.finish()
    finally:
        run.g.close()
        run.server.close()
        run.session.close()
    assert text == undebugged(seed, vcpus)[0], f"seed {seed}: code changed: {commands}"
    differ = differences(b.layout, undebugged(seed, vcpus)[1], data)
    assert not differ, f"seed {seed}: the guest computed something else: {differ}; {commands}"
