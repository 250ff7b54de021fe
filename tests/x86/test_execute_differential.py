"""The in-place executor against independent implementations (``guestdbg.arch.ExecuteInPlace``
asks every accepted instruction to be checked): the real CPU through this machine's
``/dev/kvm``, one single step per case, and Unicorn's x86 (the emulated host). Cases and the
harness are in :mod:`.execute_cases` and :mod:`.execute_diff`; a refused case is not run, an
accepted one must match in all sixteen GPRs, RIP and RFLAGS.

On ``kvm_pvm`` guest CPL0 code runs in KVM's instruction emulator, whose arithmetic runs the
host CPU's own instructions (``fastop``): the flags compared are this machine's CPU's.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from . import machines
from .execute_cases import OTHER_FLAGS
from .execute_diff import GUEST, Outcome, run_kvm

KVM_CASES = 20_000
UNICORN_CASES = 3_000
EXPECTED_CLASSES = {"alu", "test", "mov", "xchg", "lea", "movzx", "movsx", "movsxd", "inc",
                    "dec", "not", "neg", "nop", "jmp", "jcc"}  # fmt: skip


def _report(out: Outcome) -> str:
    return f"{len(out.mismatches)} of {out.accepted} accepted cases differ:\n" + "\n".join(
        out.mismatches[:20]
    )


def _classes(out: Outcome) -> set[str]:
    """The instruction classes the accepted cases covered (``Plan.text``'s first word)."""
    words = {text.split()[0] for text in out.texts}
    return {"alu" if w.startswith("alu") else "jcc" if w[0] == "j" and w != "jmp" else w
            for w in words}  # fmt: skip


@pytest.mark.realkvm
def test_accepted_instructions_match_the_real_cpu(
    x86_guests: Callable[[str], pathlib.Path],
) -> None:
    reason = machines.kvm_unusable()
    if reason is not None:
        pytest.skip(reason)
    m = machines.real(x86_guests(GUEST))
    try:
        out = run_kvm(m, seed=20_260_412, accepted=KVM_CASES, limit=4 * KVM_CASES)
    finally:
        m.close()
    assert out.accepted == KVM_CASES
    assert not out.mismatches, _report(out)
    missing = EXPECTED_CLASSES - _classes(out)
    assert not missing, f"the cases never reached {missing}"


def test_accepted_instructions_match_unicorn(x86_guests: Callable[[str], pathlib.Path]) -> None:
    """Without RF (Unicorn leaves it set after an instruction, the CPU clears it) and without
    C6/C7 with REX.R (Unicorn raises #UD): both in tests/fidelity/test_x86_unicorn_bugs.py."""
    m = machines.emulated(x86_guests(GUEST))
    try:
        flags = tuple(f for f in OTHER_FLAGS if f != 1 << 16)
        out = run_kvm(m, seed=7, accepted=UNICORN_CASES, limit=4 * UNICORN_CASES,
                      other_flags=flags, skip=_unicorn_rex_r_mov)  # fmt: skip
    finally:
        m.close()
    assert out.accepted == UNICORN_CASES
    assert not out.mismatches, _report(out)


def _unicorn_rex_r_mov(code: bytes) -> bool:
    i = 1 if code[0] == 0x66 else 0
    return 0x40 <= code[i] <= 0x4F and code[i] & 4 != 0 and code[i + 1] in (0xC6, 0xC7)
