"""Stop replies read only the registers they carry when the target can read just those
(``read_some_registers``), and the whole file otherwise: the same reply either way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from memtarget import MSR, PC, SP, MemTarget
from rsp_client import ask1

from guestdbg.gdb.stub import GdbStub


class CountingTarget(MemTarget):
    def __init__(self, partial: bool) -> None:
        super().__init__()
        self.full_reads = 0
        self.partial_reads: list[tuple[int, tuple[int, ...]]] = []
        if partial:
            self.read_some_registers = self._read_some

    def read_registers(self, vcpu: int) -> list[int | None]:
        self.full_reads += 1
        return super().read_registers(vcpu)

    def _read_some(self, vcpu: int, regnums: Sequence[int]) -> Mapping[int, int | None]:
        self.partial_reads.append((vcpu, tuple(regnums)))
        regs = super().read_registers(vcpu)
        return {n: regs[n] for n in regnums}


def stops(partial: bool) -> tuple[CountingTarget, list[bytes]]:
    target = CountingTarget(partial)
    stub = GdbStub(target)
    stub.connection_made()
    replies = [ask1(stub, b"?")]
    stub.receive(b"$s#73")
    ev = target.wait_stop(5)
    assert ev is not None
    replies.append(stub.report_stop(ev))
    return target, replies


def test_a_target_that_reads_some_registers_is_asked_only_for_the_expedited_ones() -> None:
    target, replies = stops(partial=True)
    assert target.full_reads == 0
    assert target.partial_reads == [(0, (PC, SP, MSR)), (0, (PC, SP, MSR))]
    assert b";20:00001004;01:00004ff0;21:00029000;" in replies[1]


def test_without_it_the_reply_is_the_same_from_the_whole_register_file() -> None:
    partial = stops(partial=True)[1]
    target, full = stops(partial=False)
    assert target.full_reads == 2
    assert full == partial
