# AltiVec on e6500, in 64-bit mode: what GDB's vr registers must show and change.
#
# After entering 64-bit mode and making AltiVec available (MSR[SPV]), the guest splats 7 into
# every word of v1 and -2 into v2, clears v3, then loops: `vec_loop` adds v1 to v3 word-wise,
# `vec_added` stores v3 to `out` (16 bytes). A debugger stopped at `vec_added` after n rounds
# sees v3 = {7n, 7n, 7n, 7n}; a value it writes into v1 is what the next round adds.
    .include "spr.inc"
    .include "boot64.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    ENTER_64BIT r10
    mfmsr r10
    oris r10, r10, MSR_SPV_HI
    mtmsr r10
    isync
    vspltisw v1, 7
    vspltisw v2, -2
    vxor v3, v3, v3
    LOAD_ADDR r31, out
    .globl vec_loop
vec_loop:
    vadduwm v3, v3, v1
    .globl vec_added
vec_added:
    stvx v3, 0, r31
    b vec_loop

    .data
    .balign 16
    .globl out
out:
    .space 16
