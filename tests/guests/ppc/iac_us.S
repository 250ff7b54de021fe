# A guest IAC qualified "supervisor only" (DBCR1[IAC1US] = 0b10) on code the guest runs in
# supervisor state. The facility compares with the MSR the hardware runs the guest with: on
# BookE-HV that is the guest's (PR = 0, the event fires), on BookE-PR the guest always runs with
# PR = 1 (it never fires). Reports the number of debug interrupts taken.
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
    lis r3, 0x8000               # IAC1US = 0b10: supervisor only
    mtspr DBCR1, r3
    lis r3, target@h
    ori r3, r3, target@l
    mtspr IAC1, r3
    lis r3, 0x4080               # IDM | IAC1
    mtspr DBCR0, r3
    nop
    .globl target
target:
    nop
    li r3, 0
    mtspr DBCR0, r3
    .globl done
done:
    HOSTIO_DONE_WITH r26, r9
    b done

    .align 4
dbg_h_mc:
    addi r26, r26, 1
    li r22, 0
    mtspr DBCR0, r22
    li r22, -1
    mtspr DBSR, r22
    rfdi
    .align 4
dbg_h_v2:
    addi r26, r26, 1
    li r22, 0
    mtspr DBCR0, r22
    li r22, -1
    mtspr DBSR, r22
    rfci
