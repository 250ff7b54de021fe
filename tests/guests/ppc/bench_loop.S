# A tight loop with a load and a store, for engine speed: r5 iterations of 6 instructions,
# then HOSTIO_DONE. `far_code` and `far_data` are never touched (for armed-but-idle points).
    .include "hostio.inc"
    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, buf@h
    ori r3, r3, buf@l
    li r4, 0
    lis r5, iterations@ha
    lwz r5, iterations@l(r5)
    .globl loop
loop:
    stw r4, 0(r3)
    lwz r6, 0(r3)
    add r7, r7, r6
    addi r4, r4, 1
    cmpw r4, r5
    blt loop
    .globl done
done:
    HOSTIO_DONE_WITH r4, r9
    b done

    .align 4
    .globl far_code
far_code:
    nop
    nop
    blr

    .data
    .align 3
    .globl iterations
iterations:
    .long 1000000
    .globl buf
buf:
    .long 0
    .balign 8192
    .globl far_data
far_data:
    .long 0
    .long 0
