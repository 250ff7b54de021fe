# The breakpoint benchmark's guest, the same ELF for QEMU ppce500 and the emulated e500mc host:
# an endless loop whose `hit` instruction runs once per iteration and stores the iteration
# number in `count`, so a benchmark can check that every hit it counted really happened.
# No host I/O: the loop never leaves the guest except for the debugger.
    .section .text.start, "ax"
    .globl _start
_start:
    lis r31, count@h
    ori r31, r31, count@l
    li r4, 0
    .globl loop
loop:
    addi r4, r4, 1
    .globl hit
hit:
    stw r4, 0(r31)
    b loop

    .data
    .align 4
    .globl count
count:
    .long 0
