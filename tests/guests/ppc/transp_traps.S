# A guest that takes its own exceptions and nothing else, for the transparency property test under
# the host-priority policy: three rounds of {a call that sums an array, `tw` (trap), `sc`, and its
# own breakpoint word 0x00dddd00}. Its handlers append {vector, SRR0, ESR} (16-byte entries) to
# `plog`; `sum` and `rounds` hold the computation's results. Ends with HOSTIO_DONE(entries).
# (Handlers log no MSR: KVM BookE-HV shows MSR[DE] to the guest while the host debugs,
# kvmppc_vcpu_sync_debug - a leak of the kernel's, not something userspace can hide.)
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r10, _start@h
    mtspr IVPR, r10
    li r11, program_h - _start
    mtspr IVOR6, r11
    li r11, syscall_h - _start
    mtspr IVOR8, r11
    lis r30, plog@h
    ori r30, r30, plog@l
    lis r31, vars@h
    ori r31, r31, vars@l
    li r26, 3
    .globl round
round:
    lis r3, array@h
    ori r3, r3, array@l
    li r4, 8
    bl sum_array
    lwz r5, 0(r31)
    add r5, r5, r3
    stw r5, 0(r31)               # sum
    .globl own_tw
own_tw:
    tw 31, 0, 0
    .globl own_sc
own_sc:
    sc
    .globl own_bp
own_bp:
    .long 0x00dddd00
    lwz r5, 4(r31)
    addi r5, r5, 1
    stw r5, 4(r31)               # rounds
    addi r26, r26, -1
    cmpwi r26, 0
    bne round
    lis r8, plog@h
    ori r8, r8, plog@l
    sub r3, r30, r8
    srwi r3, r3, 4
    .globl done
done:
    HOSTIO_DONE_WITH r3, r9
    b done

    .globl sum_array
sum_array:                       # r3 = array, r4 = count -> r3 = sum (stack frame on r1)
    stwu r1, -16(r1)
    stw r20, 8(r1)
    li r20, 0
    mtctr r4
1:  lwz r5, 0(r3)
    add r20, r20, r5
    addi r3, r3, 4
    bdnz 1b
    mr r3, r20
    lwz r20, 8(r1)
    addi r1, r1, 16
    blr

    .globl program_h
program_h:
    li r20, 6
    mfspr r21, SRR0
    mfspr r22, ESR
    stw r20, 0(r30)
    stw r21, 4(r30)
    stw r22, 8(r30)
    addi r30, r30, 16
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi

    .globl syscall_h
syscall_h:
    li r20, 8
    mfspr r21, SRR0
    stw r20, 0(r30)
    stw r21, 4(r30)
    addi r30, r30, 16
    rfi

    .data
    .align 3
    .globl vars
vars:
    .long 0, 0
    .globl array
array:
    .long 1, 2, 3, 4, 5, 6, 7, 8
    .globl plog
plog:
    .space 16 * 16
