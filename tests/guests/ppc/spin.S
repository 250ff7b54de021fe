# Runs forever (for kicks): counts in r3.
    .section .text.start, "ax"
    .globl _start
_start:
    li r3, 0
    .globl spin
spin:
    addi r3, r3, 1
    b spin
