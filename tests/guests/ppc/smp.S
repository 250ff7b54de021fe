# Two vCPUs from one entry point, told apart by PIR: vCPU 0 publishes a word in shared memory,
# vCPU 1 waits for it and reports it; vCPU 0 reports its PIR.
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    mfspr r3, PIR
    lis r4, mailbox@h
    ori r4, r4, mailbox@l
    cmpwi r3, 0
    bne secondary
    lis r5, 0x1234
    ori r5, r5, 0x5678
    stw r5, 0(r4)
    HOSTIO_DONE_WITH r3, r9
0:  b 0b
secondary:
1:  lwz r5, 0(r4)
    cmpwi r5, 0
    beq 1b
    HOSTIO_DONE_WITH r5, r9
2:  b 2b

    .data
    .align 3
    .globl mailbox
mailbox:
    .long 0
