# Every vCPU runs the same loop from the same entry point, told apart by PIR: each calls `tick`
# with r3 = its PIR, and `tick` counts the call in counters[PIR]. A breakpoint on `tick` is hit
# by every vCPU; the thread of a stop must be the vCPU whose PIR is in r3 (thread N = PIR N-1),
# and each vCPU's counter must equal the hits reported for it (none lost, none invented).

    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    mfspr r30, PIR
    lis r31, counters@h
    ori r31, r31, counters@l
    slwi r29, r30, 2
    add r31, r31, r29            # r31 = &counters[PIR]
    .globl loop
loop:
    mr r3, r30
    bl tick
    b loop

    .globl tick
tick:
    lwz r4, 0(r31)
    addi r4, r4, 1
    .globl tick_store
tick_store:
    stw r4, 0(r31)
    blr

    .data
    .align 4
    .globl counters
counters:
    .long 0, 0, 0, 0
