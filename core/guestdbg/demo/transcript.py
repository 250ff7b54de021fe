"""The demo's transcript: per step, what GDB was told, what it answered, what the host saw,
and why. Printed as it happens, so a slow or failing step shows where it is."""

from __future__ import annotations

from typing import TextIO

INDENT = "      "


class Transcript:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.steps = 0

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def title(self, text: str) -> None:
        self._print(text)

    def step(self, title: str) -> None:
        self.steps += 1
        self._print()
        self._print(f"== {self.steps}. {title} ==")

    def told(self, command: str, answer: str) -> None:
        """One GDB command and GDB's answer, as a user at its prompt would read them."""
        self._print(f"  (gdb) {command}")
        for line in answer.rstrip("\n").splitlines():
            if line.strip():
                self._print(INDENT + line.expandtabs(8))

    def host(self, text: str) -> None:
        """What the host side (the VMM) saw: guest memory, the stub's packets, counters."""
        self._print(f"  host: {text}")

    def why(self, text: str) -> None:
        self._print(f"  why:  {text}")
