"""Serving ``g`` ``G`` ``p`` ``P`` on the ``Hg`` thread's vCPU."""

from __future__ import annotations

from ...errors import InvalidRequest
from ..commands.registers import ReadRegister, ReadRegisters, WriteRegister, WriteRegisters
from ..context import StubContext


def read_registers(ctx: StubContext, cmd: ReadRegisters) -> bytes:
    return ctx.codec.encode_all(ctx.target.read_registers(ctx.general_vcpu()))


def write_registers(ctx: StubContext, cmd: WriteRegisters) -> bytes:
    """Only the registers whose value changes are written: GDB's ``G`` carries the whole file,
    and a vCPU may refuse writes to registers it cannot take even when nothing changes.
    A PC write that is GDB skipping a program breakpoint is not applied
    (:mod:`guestdbg.gdb.program_breakpoints`), here as for ``P``."""
    values = ctx.codec.decode_all(cmd.hex_values)
    vcpu = ctx.general_vcpu()
    current = ctx.target.read_registers(vcpu)
    changed = {n: v for n, v in values.items() if current[n] != v}
    pc = ctx.target.gdb_arch.pc_regnum
    if pc in changed and ctx.skips.absorbs_pc_write(ctx.target, vcpu, changed[pc]):
        del changed[pc]
    if changed:
        ctx.target.write_registers(vcpu, changed)
    return b"OK"


def _check(ctx: StubContext, regnum: int) -> None:
    if regnum >= ctx.codec.count:
        raise InvalidRequest(f"no register {regnum} (the arch has {ctx.codec.count})")


def read_register(ctx: StubContext, cmd: ReadRegister) -> bytes:
    _check(ctx, cmd.regnum)
    values = ctx.target.read_registers(ctx.general_vcpu())
    return ctx.codec.encode_one(cmd.regnum, values[cmd.regnum])


def write_register(ctx: StubContext, cmd: WriteRegister) -> bytes:
    _check(ctx, cmd.regnum)
    value = ctx.codec.decode_one(cmd.regnum, cmd.hex_value)
    if value is None:
        raise InvalidRequest(f"register {cmd.regnum}: cannot write an unavailable value")
    vcpu = ctx.general_vcpu()
    if cmd.regnum == ctx.target.gdb_arch.pc_regnum and ctx.skips.absorbs_pc_write(
        ctx.target, vcpu, value
    ):
        return b"OK"
    ctx.target.write_registers(vcpu, {cmd.regnum: value})
    return b"OK"


HANDLERS = {
    ReadRegisters: read_registers,
    WriteRegisters: write_registers,
    ReadRegister: read_register,
    WriteRegister: write_register,
}
