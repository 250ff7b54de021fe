# A loop whose registers and memory say which instruction ran last, so a stop can be checked for
# being at an instruction boundary: at `loop` r4 == r5 == count; at `hit` (the store, not yet
# run) r4 == r5 + 1 and count == r4 - 1; after it r4 == r5 + 1 and count == r4; at `tail`'s
# branch r4 == r5 == count.
    .section .text.start, "ax"
    .globl _start
_start:
    lis r31, count@h
    ori r31, r31, count@l
    li r4, 0
    li r5, 0
    .globl loop
loop:
    addi r4, r4, 1
    .globl hit
hit:
    stw r4, 0(r31)
    .globl tail
tail:
    addi r5, r5, 1
    b loop

    .data
    .align 4
    .globl count
count:
    .long 0
