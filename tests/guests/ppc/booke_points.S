# Straight-line code for host hardware points: two instruction addresses, then loads and stores
# to three watched words, an `stwu` whose update a watch stop must not show, and a third
# instruction address. r20 counts the instructions at code_a/b/c that ran; at the end the guest
# reports r20 through HOSTIO_DONE.
    .include "hostio.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, word_a@h
    ori r3, r3, word_a@l
    lis r8, word_b@h
    ori r8, r8, word_b@l
    lis r10, word_c@h
    ori r10, r10, word_c@l
    li r4, 0x11
    li r20, 0
    .globl code_a
code_a:
    addi r20, r20, 1
    .globl code_b
code_b:
    addi r20, r20, 1
    .globl store_a
store_a:
    stw r4, 0(r3)
    .globl load_b
load_b:
    lwz r5, 0(r8)
    .globl load_a
load_a:
    lwz r6, 0(r3)
    .globl store_b
store_b:
    stw r4, 0(r8)
    .globl stwu_d
stwu_d:
    stwu r4, 4(r10)             # word_d = word_c + 4; r10 becomes word_d
    .globl code_c
code_c:
    addi r20, r20, 1
    .globl done
done:
    HOSTIO_DONE_WITH r20, r9
    b done

    .data
    .align 3
    .globl word_a
word_a:
    .long 0
    .globl word_b
word_b:
    .long 0x0b0b0b0b
    .globl word_c
word_c:
    .long 0
    .globl word_d
word_d:
    .long 0
