# A counting loop with loads and stores, for breakpoints, watchpoints and steps.
#   r4 counts to r5 (100), storing r4 to `counter` and loading it back into r6 each time;
#   at the end the guest reports r4 through HOSTIO_DONE.
    .include "hostio.inc"
    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, counter@h
    ori r3, r3, counter@l
    li r4, 0
    li r5, 100
    .globl loop
loop:
    .globl store_insn
store_insn:
    stw r4, 0(r3)
    .globl load_insn
load_insn:
    lwz r6, 0(r3)
    .globl bp_here
bp_here:
    addi r4, r4, 1
    cmpw r4, r5
    blt loop
    .globl after_loop
after_loop:
    stwu r4, 4(r3)              # counter + 4 = `other`: a store the stwu update can be seen by
    .globl done
done:
    HOSTIO_DONE_WITH r4, r9
    b done

    .data
    .align 3
    .globl counter
counter:
    .long 0
    .globl other
other:
    .long 0
    .long 0
