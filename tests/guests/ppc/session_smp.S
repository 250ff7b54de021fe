# Every vCPU counts in its own slot, forever; all of them pass `shared_bp`.
#   r4 = passes so far (incremented just before shared_bp), stored to slots[PIR].count at shared_bp.
#   `private_bp` is passed only by vCPU 1 (the others branch around it).
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    mfspr r10, PIR
    lis r20, slots@h
    ori r20, r20, slots@l
    slwi r11, r10, 4
    add r21, r20, r11
    li r4, 0
    .globl loop
loop:
    addi r4, r4, 1
    .globl shared_bp
shared_bp:
    stw r4, 0(r21)
    cmpwi r10, 1
    bne 1f
    .globl private_bp
private_bp:
    stw r4, 4(r21)
1:
    .globl loop_end
loop_end:
    b loop

    .data
    .align 4
    .globl slots
slots:
    .space 16 * 8
