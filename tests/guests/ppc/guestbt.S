# The guest's own branch-taken debug event (DBCR0[BRT]): a not-taken conditional branch raises
# nothing, the taken branch raises the event before it executes. The handler records save/restore
# 0 and DBSR (reported as two checkpoints), disarms, and returns to the branch, which then runs.
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r10, _start@h
    mtspr IVPR, r10
    mfspr r3, PVR
    srwi r3, r3, 16
    cmplwi r3, 0x8023
    li r11, dbg_h_mc - _start
    beq 1f
    li r11, dbg_h_v2 - _start
1:  mtspr IVOR15, r11
    li r26, 0
    mfmsr r3
    ori r3, r3, 0x0200           # MSR[DE]
    mtmsr r3
    li r3, 0
    cmpwi r3, 1
    lis r4, 0x4400               # IDM | BRT
    mtspr DBCR0, r4
    .globl not_taken
not_taken:
    beq never
    .globl taken
taken:
    b target
    nop
target:
    li r4, 0
    mtspr DBCR0, r4
    HOSTIO_CHECKPOINT_WITH r25, r9
    HOSTIO_CHECKPOINT_WITH r24, r9
    .globl done
done:
    HOSTIO_DONE_WITH r26, r9
    b done
never:
    b never

    .macro BODY srr0
    addi r26, r26, 1
    mfspr r25, \srr0
    mfspr r24, DBSR
    li r22, 0
    mtspr DBCR0, r22
    li r22, -1
    mtspr DBSR, r22
    .endm
    .align 4
dbg_h_mc:
    BODY DSRR0
    rfdi
    .align 4
dbg_h_v2:
    BODY CSRR0
    rfci
