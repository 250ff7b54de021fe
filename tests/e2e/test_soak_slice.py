"""A slice of the soak (``bench/soak.py``, issue 13): a few real gdb-multiarch debuggers one
after another, each doing random things and leaving by detach, quit or kill, on one vCPU (the
two-vCPU soak finds the session races in ``tests/session/test_soak_finds.py``, still open).
After each the server has detached, the guest runs on and its code equals the ELF's."""

from __future__ import annotations

import re
import subprocess
import sys

from .served import NEEDS_GDB, ROOT

pytestmark = NEEDS_GDB


def test_a_few_random_debuggers_in_a_row_leave_the_guest_as_the_elf_has_it() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--connections", "4", "--vcpus", "1",
         "--seed", "5"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    fields = dict(re.findall(r"(\w+)=(\S+)", last))
    assert fields.get("byte_identical") == "yes", out.stdout + out.stderr
    assert fields.get("errors") == "0", out.stdout + out.stderr
    assert int(fields["threads_end"]) <= int(fields["threads_start"]), last
    assert re.search(r"connections=4\b", out.stdout) and out.returncode == 0
