# MMIO through the host-I/O page: stores of each width (and byte-reversed), then loads whose
# values the host supplies, then a done report with their combination.
    .include "hostio.inc"
    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r8, HOSTIO_BASE@h
    ori r8, r8, 0x100
    lis r3, 0x1122
    ori r3, r3, 0x3344
    .globl st_b
st_b:
    stb r3, 0(r8)
    .globl st_h
st_h:
    sth r3, 2(r8)
    .globl st_w
st_w:
    stw r3, 4(r8)
    li r4, 8
    .globl st_wbrx
st_wbrx:
    stwbrx r3, r4, r8
    .globl ld_w
ld_w:
    lwz r10, 0x10(r8)
    .globl ld_ha
ld_ha:
    lha r11, 0x14(r8)
    mr r12, r8
    .globl ld_wu
ld_wu:
    lwzu r13, 0x18(r12)
    .globl done
done:
    HOSTIO_DONE_WITH r10, r9
    b done
