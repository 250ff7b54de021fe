"""The x86-64 rows of ``docs/fidelity.md`` and ``guestdbg_x86.fidelity.differences.KNOWN`` name
the same keys, and ``explain`` accepts a difference only where its row says so."""

from __future__ import annotations

import pathlib
import re

from guestdbg.kvm import constants as C
from guestdbg_x86.fidelity.differences import KNOWN, explain
from guestdbg_x86.fidelity.flags import AF, CF, OF

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"


def _x86_rows() -> set[str]:
    text = DOC.read_text()
    part = text.split("## x86-64", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", part, flags=re.MULTILINE))


def test_the_doc_and_the_code_name_the_same_x86_differences() -> None:
    assert _x86_rows() == {k.key for k in KNOWN}


def test_every_known_difference_names_a_primary_source() -> None:
    for k in KNOWN:
        assert k.source and ("arch/x86/kvm" in k.source or "SDM" in k.source), k.key


def test_rflags_is_explained_only_within_the_undefined_flags() -> None:
    assert explain("rflags", 0x2, 0x2 | AF | OF, {}, undefined_flags=AF | OF) is not None
    assert explain("rflags", 0x2, 0x2 | CF, {}, undefined_flags=AF | OF) is None
    assert explain("rax", 1, 2, {}, undefined_flags=AF) is None


def test_a_debug_exit_instead_of_hlt_is_explained_only_after_the_hlt() -> None:
    state = {"exit": C.KVM_EXIT_DEBUG, "debug.pc": 0x10100}
    assert explain("exit", C.KVM_EXIT_DEBUG, C.KVM_EXIT_HLT, state, halted=0x10100)
    assert explain("exit", C.KVM_EXIT_DEBUG, C.KVM_EXIT_HLT, state, halted=0x10200) is None
    assert explain("exit", C.KVM_EXIT_DEBUG, C.KVM_EXIT_IO, state, halted=0x10100) is None
