"""The e500 engines' soft TLB stays at its initial size through long runs and full flushes.

In virtual-TLB mode Unicorn's own fill gives an entry only the permission of the access that
filled it, so a guest loop with a load and a store on one page refilled that page's entry twice
per iteration, QEMU counted each refill as one more entry in use, and at every full TLB flush
its dynamic sizing doubled the table, up to 2^20 entries (40 MiB with the I/O part) per engine:
``bench/soak.py`` showed it as resident-memory spikes of 40 to 90 MiB that came and went
(docs/reference/unicorn.md §12). The engine's TLB-fill hook gives a page that is not
read-protected every permission at once, so its entry is filled once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guestdbg.emuhost import unicorn as ucc
from guestdbg.emuhost.memory import GuestMemory
from guestdbg_booke.emuhost.engine import Engine, StopKind

LOOP = 0x1000
DATA = 0x2000
WATCHED = (0x3000, 0x4000)
"""Pages the loop never touches: taking the read permission of one away makes the engine flush
its whole TLB before the next run, as a read watch does."""
LOOP_WORDS = (
    0x80850000,  # lwz r4, 0(r5)
    0x38840001,  # addi r4, r4, 1
    0x90850000,  # stw r4, 0(r5)
    0x4BFFFFF4,  # b LOOP
)
MSR_PR = 0x4000


def engine() -> Engine:
    ram = GuestMemory("big")
    ram.add_slot(0, 0x10000)
    ram.write(LOOP, b"".join(w.to_bytes(4, "big") for w in LOOP_WORDS))
    eng = Engine("e500mc", ram)
    gprs = eng.gprs()
    gprs[5] = DATA
    eng.set_gprs(gprs)
    return eng


def rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    pytest.skip("no RssAnon in /proc/self/status")


def test_a_load_and_a_store_on_one_page_fill_its_entry_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fills: list[int] = []
    perms = Engine._tlb_perms

    def counted(self: Engine, page: int, access_prot: int) -> int:
        fills.append(page)
        return perms(self, page, access_prot)

    monkeypatch.setattr(Engine, "_tlb_perms", counted)
    eng = engine()
    fills.clear()  # the engine ran its XER stubs when it was made (emuhost.xer_flags)
    stop = eng.run(LOOP, MSR_PR, step=False)
    assert stop.kind is StopKind.NONE
    iterations = int.from_bytes(eng.ram.read(DATA, 4), "big")
    assert iterations >= ucc.SLICE // len(LOOP_WORDS) - 1
    assert sorted(set(fills)) == [LOOP & ~0xFFF, DATA] and len(fills) == 2, fills[:10]


def test_long_runs_between_full_flushes_leave_the_tlb_as_small_as_it_was() -> None:
    """Twenty full flushes, each after a million instructions of the loop: before the hook the
    tables doubled at the flushes (this test measured 82 MiB more resident memory)."""
    eng = engine()
    eng.run(LOOP, MSR_PR, step=False)
    before = rss_anon_kib()
    pc = LOOP
    for n in range(20):
        eng.set_protection({WATCHED[n % 2]: ucc.UC_PROT_WRITE | ucc.UC_PROT_EXEC})
        for _ in range(10):
            stop = eng.run(pc, MSR_PR, step=False)
            assert stop.kind is StopKind.NONE
            pc = stop.pc
    grown = rss_anon_kib() - before
    assert grown < 4096, f"resident anonymous memory grew by {grown} KiB"
