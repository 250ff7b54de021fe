# Program, system-call and FP-unavailable interrupts handled by the guest's own handlers.
# Each handler appends {vector, SRR0, SRR1, ESR, MSR in the handler} (32-byte entries) to `log`
# and returns: past the faulting instruction for program/FP, to SRR0 for sc.
# r29 counts handled interrupts, r30 is the log cursor; r20-r24 belong to the handlers.
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
    li r11, fpu_h - _start
    mtspr IVOR7, r11
    li r11, sc_h - _start
    mtspr IVOR8, r11
    lis r30, log@h
    ori r30, r30, log@l
    li r29, 0
    lis r12, 0x0080
    mtspr ESR, r12               # ESR[ST]: BookE-PR's emulated trap ORs PTR into the old ESR
    .globl trap_insn
trap_insn:
    tw 31, 0, 0
    .globl sc_insn
sc_insn:
    sc
    .globl illegal_insn
illegal_insn:
    .long 0
    .globl swbp_insn
swbp_insn:
    .long 0x00dddd00
    .globl fp_insn
fp_insn:
    lfd f0, 0(r30)
    lis r3, user_code@h          # drop to problem state
    ori r3, r3, user_code@l
    mtspr SRR0, r3
    li r3, 0x4000                # MSR[PR]
    mtspr SRR1, r3
    rfi
user_code:
    .globl user_priv_insn
user_priv_insn:
    mfmsr r3
    li r0, 1                     # ask the sc handler to return to supervisor state
    .globl user_sc
user_sc:
    sc
    .globl back_in_super
back_in_super:
    .globl done
done:
    HOSTIO_DONE_WITH r29, r9
    b done

    .macro LOG vec
    li r20, \vec
    mfspr r21, SRR0
    mfspr r22, SRR1
    mfspr r23, ESR
    mfmsr r24
    stw r20, 0(r30)
    stw r21, 4(r30)
    stw r22, 8(r30)
    stw r23, 12(r30)
    stw r24, 16(r30)
    addi r30, r30, 32
    addi r29, r29, 1
    .endm

    .align 4
prog_h:
    LOG 6
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi
    .align 4
fpu_h:
    LOG 7
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi
    .align 4
sc_h:
    LOG 8
    cmpwi r0, 1
    bne 1f
    li r0, 0
    lis r21, back_in_super@h
    ori r21, r21, back_in_super@l
    mtspr SRR0, r21
    li r22, 0
    mtspr SRR1, r22
1:  rfi

    .data
    .align 5
    .globl log
log:
    .space 32 * 16
