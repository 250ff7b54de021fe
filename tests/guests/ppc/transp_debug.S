# A guest that uses its own debug facility and its own traps, for the transparency property test
# under the guest-priority policy. Three rounds of: an IAC on `iac_target`, a DAC write on
# `dac_word`, three instruction-complete events, a trap debug event (DBCR0[TIE]), then with the
# debug facility off a `tw`, an `sc` and its own breakpoint word 0x00dddd00 (program/syscall
# handlers). e500mc takes debug interrupts in the debug class (DSRR0/1, rfdi), e500v2 in the
# critical class (CSRR0/1, rfci); the guest picks by PVR.
# Debug handler: appends {save/restore 0, DBSR, MSR, save/restore 1} to `dlog`, clears DBSR,
# then TIE -> skip the trap; IC -> count down r28 and disarm at 0; else disarm DBCR0.
# Program/syscall handlers: append {vector, SRR0, ESR, SRR1} to `plog`.
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r10, _start@h
    mtspr IVPR, r10
    mfspr r3, PVR
    srwi r3, r3, 16
    cmplwi r3, 0x8023            # e500mc
    li r11, dbg_h_mc - _start
    beq 1f
    li r11, dbg_h_v2 - _start
1:  mtspr IVOR15, r11
    li r11, program_h - _start
    mtspr IVOR6, r11
    li r11, syscall_h - _start
    mtspr IVOR8, r11
    lis r27, dlog@h
    ori r27, r27, dlog@l
    lis r30, plog@h
    ori r30, r30, plog@l
    mfmsr r3
    ori r3, r3, 0x0200           # MSR[DE]
    mtmsr r3
    li r26, 3
    .globl round
round:
    lis r3, iac_target@h
    ori r3, r3, iac_target@l
    mtspr IAC1, r3
    lis r3, IDM | IAC1E
    mtspr DBCR0, r3
    nop
    .globl iac_target
iac_target:
    addi r5, r5, 1
    lis r4, dac_word@h
    ori r4, r4, dac_word@l
    mtspr DAC1, r4
    lis r3, IDM | DAC1W
    mtspr DBCR0, r3
    .globl dac_store
dac_store:
    stw r5, 0(r4)
    li r28, 3
    lis r3, IDM | IC
    mtspr DBCR0, r3
    .globl ic_first
ic_first:
    addi r7, r7, 1
    addi r7, r7, 2
    addi r7, r7, 3
    addi r7, r7, 4
    lis r3, IDM | TIE
    mtspr DBCR0, r3
    .globl tie_trap
tie_trap:
    tw 31, 0, 0
    li r3, 0
    mtspr DBCR0, r3
    .globl own_tw
own_tw:
    tw 31, 0, 0
    .globl own_sc
own_sc:
    sc
    .globl own_bp
own_bp:
    .long 0x00dddd00
    addi r26, r26, -1
    cmpwi r26, 0
    bne round
    stw r7, 4(r4)                # dac_word + 4: the IC-stepped sum
    lis r8, dlog@h
    ori r8, r8, dlog@l
    sub r3, r27, r8
    srwi r3, r3, 4
    .globl done
done:
    HOSTIO_DONE_WITH r3, r9
    b done

    .include "owndebug.inc"

    .macro PLOG vec
    li r20, \vec
    mfspr r21, SRR0
    mfspr r22, ESR
    mfspr r23, SRR1
    stw r20, 0(r30)
    stw r21, 4(r30)
    stw r22, 8(r30)
    stw r23, 12(r30)
    addi r30, r30, 16
    .endm

    .globl program_h
program_h:
    PLOG 6
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi
    .globl syscall_h
syscall_h:
    PLOG 8
    rfi
    .globl text_end
text_end:

    .data
    .align 3
    .globl dac_word
dac_word:
    .long 0, 0
    .globl dlog
dlog:
    .space 16 * 24
    .globl plog
plog:
    .space 16 * 12
    .globl data_end
data_end:
