# e6500 AltiVec in a 64-bit guest. The first vector instruction (`first_vec`) runs with MSR[SPV]
# clear: AltiVec unavailable (IVOR32), whose handler counts (r29), sets SPV in SRR1 and returns to
# retry it. Then v3 = v1 + v2 bytewise from `vin1`/`vin2` into `vout`, and `mfvscr` into `vscr_out`.
# Reports r29 (1) through HOSTIO_DONE.
    .include "hostio.inc"
    .include "spr.inc"

    GUEST64_START
    li r11, vec_h - _start
    mtspr IVOR32, r11
    li r29, 0
    ENTER_64 r12
    LI32 r6, vin1
    LI32 r7, vin2
    LI32 r8, vout
    .globl first_vec
first_vec:
    lvx v1, 0, r6
    lvx v2, 0, r7
    vaddubm v3, v1, v2
    stvx v3, 0, r8
    mfvscr v4
    addi r8, r8, 16
    stvx v4, 0, r8
    .globl done
done:
    HOSTIO_DONE_WITH r29, r9
    b done

    .align 4
vec_h:
    addi r29, r29, 1
    mfspr r20, SRR1
    oris r20, r20, MSR_VEC_H
    mtspr SRR1, r20
    rfi

    .data
    .align 4
    .globl vin1
vin1:
    .byte 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
vin2:
    .byte 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0xff
    .globl vout
vout:
    .space 16
    .globl vscr_out
vscr_out:
    .space 16
