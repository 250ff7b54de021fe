# Doubleword and word-algebraic accesses to MMIO in 64-bit mode: `std` of r5 (a value only 64
# bits hold) to HOSTIO_BASE + 0x100, `ld` into r6 from + 0x108, `lwa` into r7 from + 0x110,
# `stdu` of r6 to + 0x118 (r8 moves there), then done with r29 = 0.
    .include "hostio.inc"
    .include "spr.inc"

    GUEST64_START
    ENTER_64 r12
    li r29, 0
    li r5, 0x1234
    sldi r5, r5, 36
    ori r5, r5, 0x5678
    LI32 r8, HOSTIO_BASE
    .globl st_d
st_d:
    std r5, 0x100(r8)
    .globl ld_d
ld_d:
    ld r6, 0x108(r8)
    .globl ld_wa
ld_wa:
    lwa r7, 0x110(r8)
    .globl st_du
st_du:
    stdu r6, 0x118(r8)
    .globl done
done:
    HOSTIO_DONE_WITH r29, r9
    b done
