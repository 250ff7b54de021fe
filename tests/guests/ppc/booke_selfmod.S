# A guest that rewrites one of its own instructions and then runs it: `patched` starts as
# `li r7, 1` and the guest stores `li r7, 2` over it (with the cache sequence the ISA asks for
# before running modified code). It reports r7 through HOSTIO_DONE: 2 when the new word ran.
    .include "hostio.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, patched@h
    ori r3, r3, patched@l
    lis r4, new_word@h
    ori r4, r4, new_word@l
    lwz r5, 0(r4)
    li r7, 0
    .globl patch_store
patch_store:
    stw r5, 0(r3)
    dcbst 0, r3
    sync
    icbi 0, r3
    isync
    .globl patched
patched:
    li r7, 1
    .globl done
done:
    HOSTIO_DONE_WITH r7, r9
    b done

    .data
    .align 2
    .globl new_word
new_word:
    li r7, 2
