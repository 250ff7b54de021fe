# Every vCPU counts in its own word of `counts` (by PIR), forever: the guest of
# examples/vmm_threads.py, whose VMM keeps its own vCPU threads while GDB comes and goes.
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    mfspr r10, PIR
    lis r20, counts@h
    ori r20, r20, counts@l
    slwi r11, r10, 2
    add r21, r20, r11
    li r4, 0
    .globl count
count:
    addi r4, r4, 1
    .globl store
store:
    stw r4, 0(r21)
    b count

    .data
    .align 4
    .globl counts
counts:
    .space 4 * 8
