# Registers as the guest sees them (issue 12): the guest sets registers with its own
# instructions and stores what its own mfxer/mfcr/mfmsr/mfspr read into `seen1`, then stops at
# checkpoint 1, where the host compares KVM_GET_REGS/SREGS/ONE_REG with `seen1`. The host then
# writes new values through KVM_SET_REGS/SREGS/ONE_REG; the guest reads them into `seen2` and
# uses XER[CA] (`addze`) and CR (`mfcr` after `crxor`), and reports done.
# Table layout (both tables): XER CR LR CTR MSR SRR0 SRR1 CSRR0 CSRR1 ESR DEAR IVPR PID TCR
# SPRG0-7, then r13-r31 at offset 0x80 (stmw); `used` holds what addze and crxor produced.
    .include "hostio.inc"
    .include "spr.inc"

    .macro READ_ALL table
    lis r31, \table@h
    ori r31, r31, \table@l
    mfxer r8
    stw r8, 0(r31)
    mfcr r8
    stw r8, 4(r31)
    mflr r8
    stw r8, 8(r31)
    mfctr r8
    stw r8, 12(r31)
    mfmsr r8
    stw r8, 16(r31)
    mfspr r8, SRR0
    stw r8, 20(r31)
    mfspr r8, SRR1
    stw r8, 24(r31)
    mfspr r8, CSRR0
    stw r8, 28(r31)
    mfspr r8, CSRR1
    stw r8, 32(r31)
    mfspr r8, ESR
    stw r8, 36(r31)
    mfspr r8, DEAR
    stw r8, 40(r31)
    mfspr r8, IVPR
    stw r8, 44(r31)
    mfspr r8, PID
    stw r8, 48(r31)
    mfspr r8, TCR
    stw r8, 52(r31)
    mfspr r8, SPRG0
    stw r8, 56(r31)
    mfspr r8, SPRG1
    stw r8, 60(r31)
    mfspr r8, SPRG2
    stw r8, 64(r31)
    mfspr r8, SPRG3
    stw r8, 68(r31)
    mfspr r8, SPRG4W
    stw r8, 72(r31)
    mfspr r8, SPRG5W
    stw r8, 76(r31)
    mfspr r8, SPRG6W
    stw r8, 80(r31)
    mfspr r8, SPRG7W
    stw r8, 84(r31)
    .endm

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    li r3, 1
    addic r3, r3, -1             # XER[CA] = 1, r3 = 0
    lis r4, 0x7fff
    ori r4, r4, 0xffff
    addo r4, r4, r4              # XER[OV] = XER[SO] = 1
    li r5, 5
    li r6, 7
    cmpw cr0, r5, r6             # cr0 = LT
    cmplw cr3, r6, r5            # cr3 = GT
    crset 30                     # cr7[EQ]
    lis r7, 0x1234
    ori r7, r7, 0x5678
    mtctr r7
    bl 1f
1:  lis r10, 0x0bad
    ori r10, r10, 0xcafe
    mtspr SRR0, r10
    addi r10, r10, 4
    mtspr SRR1, r10
    addi r10, r10, 4
    mtspr CSRR0, r10
    addi r10, r10, 4
    mtspr CSRR1, r10
    lis r10, 0x0080              # ESR[ST]
    mtspr ESR, r10
    lis r10, 0x00ab
    ori r10, r10, 0xcdef
    mtspr DEAR, r10
    lis r10, 0x0010
    mtspr IVPR, r10
    li r10, 0
    mtspr PID, r10
    lis r10, 0xc300              # TCR: watchdog and FIT periods only, no interrupt enabled
    mtspr TCR, r10
    li r10, 0x100
    mtspr SPRG0, r10
    li r10, 0x101
    mtspr SPRG1, r10
    li r10, 0x102
    mtspr SPRG2, r10
    li r10, 0x103
    mtspr SPRG3, r10
    li r10, 0x104
    mtspr SPRG4W, r10
    li r10, 0x105
    mtspr SPRG5W, r10
    li r10, 0x106
    mtspr SPRG6W, r10
    li r10, 0x107
    mtspr SPRG7W, r10
    lis r13, 0x1313              # r13-r30 distinct, r31 is the table pointer
    addi r14, r13, 1
    addi r15, r13, 2
    addi r16, r13, 3
    addi r17, r13, 4
    addi r18, r13, 5
    addi r19, r13, 6
    addi r20, r13, 7
    addi r21, r13, 8
    addi r22, r13, 9
    addi r23, r13, 10
    addi r24, r13, 11
    addi r25, r13, 12
    addi r26, r13, 13
    addi r27, r13, 14
    addi r28, r13, 15
    addi r29, r13, 16
    addi r30, r13, 17
    READ_ALL seen1
    stmw r13, 0x80(r31)
    li r11, 1
    .globl checkpoint1
checkpoint1:
    HOSTIO_CHECKPOINT_WITH r11, r12
    READ_ALL seen2
    stmw r13, 0x80(r31)
    lis r30, used@h
    ori r30, r30, used@l
    li r10, 0
    addze r10, r10               # the CA the host wrote
    stw r10, 0(r30)
    crxor 31, 31, 30             # cr7[SO] ^= cr7[EQ], both as the host wrote them
    mfcr r10
    stw r10, 4(r30)
    mfxer r10
    stw r10, 8(r30)
    .globl done
done:
    HOSTIO_DONE_WITH r11, r12
    b done

    .data
    .align 5
    .globl seen1
seen1:
    .space 0x100
    .globl seen2
seen2:
    .space 0x100
    .globl used
used:
    .space 16
