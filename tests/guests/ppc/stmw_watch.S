# Load/store multiple on a page a data watchpoint protects (the fidelity regression of seed 22):
# `stmw` stores r28-r31 into `buf`, `lmw` loads them back into r24-r27, and the guest reports
# the sum; `other` shares the page and is never touched.
    .include "hostio.inc"
    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, buf@h
    ori r3, r3, buf@l
    li r28, 0x11
    li r29, 0x22
    li r30, 0x33
    li r31, 0x44
    .globl store_multiple
store_multiple:
    stmw r28, 0(r3)
    .globl load_multiple
load_multiple:
    lmw r24, 0(r3)
    add r10, r24, r25
    add r10, r10, r26
    add r10, r10, r27
    .globl done
done:
    HOSTIO_DONE_WITH r10, r9
    b done

    .data
    .align 12
    .globl other
other:
    .long 0
    .align 4
    .globl buf
buf:
    .space 16
