# A guest that does some real work, for the differential trace against QEMU: eight rounds of
# filling an array (mullw, stores, a CTR loop), checksumming it through a called function with
# a stack frame (lwz, rotates, xor, a nested call), a trap the guest's own program handler
# takes (it reads SRR0 and ESR into GPRs and skips the trap), and a system call its handler
# counts. No instruction here reads the MSR, SRR1 or the timebase: those differ by design
# between QEMU's TCG and a KVM host (MSR[GS] on HV; QEMU's SRR1 cause bits, docs/reference/peers.md §1.5).
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r10, _start@h
    mtspr IVPR, r10
    li r11, prog_h - _start
    mtspr IVOR6, r11
    li r11, sc_h - _start
    mtspr IVOR8, r11
    lis r25, array@h
    ori r25, r25, array@l
    li r26, 0                    # system calls taken
    li r29, 0                    # traps taken
    li r30, 0                    # running checksum
    li r31, 0                    # round
round:
    bl fill
    bl checksum
    add r30, r30, r3
    .globl trap_insn
trap_insn:
    tw 31, 0, 0
    .globl sc_insn
sc_insn:
    sc
    addi r31, r31, 1
    cmpwi r31, 8
    blt round
    li r5, 8
    lwzx r20, r25, r5            # array[2] of the last round
    add r5, r5, r25
    lhzu r21, 6(r5)              # and a halfword of array[3], with update
    .globl done
done:
    HOSTIO_DONE_WITH r30, r9
    b done

# fill: array[i] = i * i + round, i = 0..15
fill:
    li r4, 16
    mtctr r4
    li r5, 0
    mr r6, r25
1:  mullw r7, r5, r5
    add r7, r7, r31
    stw r7, 0(r6)
    addi r6, r6, 4
    addi r5, r5, 1
    bdnz 1b
    blr

# checksum: r3 = fold of the array, each word rotated by its index, with a nested call
checksum:
    stwu r1, -16(r1)
    mflr r0
    stw r0, 20(r1)
    li r3, 0
    li r5, 0
    mr r6, r25
2:  lwz r7, 0(r6)
    rlwnm r7, r7, r5, 0, 31
    xor r3, r3, r7
    addi r6, r6, 4
    addi r5, r5, 1
    cmpwi r5, 16
    blt 2b
    bl scramble
    lwz r0, 20(r1)
    mtlr r0
    addi r1, r1, 16
    blr

scramble:
    srwi r8, r3, 7
    slwi r9, r3, 3
    xor r3, r3, r8
    add r3, r3, r9
    lhz r10, 2(r25)
    lbz r11, 5(r25)
    add r3, r3, r10
    subf r3, r11, r3
    blr

    .align 4
    .globl prog_h
prog_h:
    mfspr r27, SRR0
    mfspr r28, ESR
    addi r29, r29, 1
    addi r27, r27, 4
    mtspr SRR0, r27
    rfi

    .align 4
    .globl sc_h
sc_h:
    addi r26, r26, 1
    rfi

    .data
    .align 4
    .globl array
array:
    .space 64
