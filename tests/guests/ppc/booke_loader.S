# A loader: three rounds of {copy a function's code from `template` to `dest_fn` (with the
# cache sequence the ISA asks for before running modified code), call it, count the round}.
# Each store over `dest_fn` replaces whatever word was there, a debugger's trap word included.
# `dest_fn` starts as a different function (`li r3, 0x7ff; blr`), so running a stale copy
# shows in the result. The copied function returns 3 * round + 7; the guest reports
# (rounds << 16) | sum of the results through HOSTIO_DONE, and in `result` for a debugger:
# 0x3001e (3 rounds, 7 + 10 + 13) when every round ran the copied code. `finished` is reached
# once the result is stored (the guest repeats the done store there).
    .include "hostio.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    li r20, 0                       # rounds done
    li r21, 0                       # sum of what dest_fn returned
    li r22, 3                       # rounds to do
round:
    lis r3, dest_fn@h
    ori r3, r3, dest_fn@l
    lis r4, template@h
    ori r4, r4, template@l
    li r5, (template_end - template) / 4
    mtctr r5
copy_word:
    lwz r6, 0(r4)
    stw r6, 0(r3)
    dcbst 0, r3
    sync
    icbi 0, r3
    addi r3, r3, 4
    addi r4, r4, 4
    bdnz copy_word
    sync
    isync
    .globl copied
copied:
    mr r3, r20
    bl dest_fn
    add r21, r21, r3
    addi r20, r20, 1
    cmpw r20, r22
    blt round
    .globl done
done:
    slwi r7, r20, 16
    or r7, r7, r21
    lis r8, result@h
    ori r8, r8, result@l
    stw r7, 0(r8)
    .globl finished
finished:
    HOSTIO_DONE_WITH r7, r9
    b finished

    .globl dest_fn
dest_fn:
    li r3, 0x7ff
    blr
    nop

    .data
    .align 2
    .globl template
template:
    mulli r3, r3, 3
    addi r3, r3, 7
    blr
template_end:

    .globl result
result:
    .long 0
