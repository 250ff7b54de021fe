# The guest using its own debug facility (host not debugging): an IAC, a DAC write, three
# instruction-complete steps and a trap event (DBCR0[TIE]), each taken by the guest's debug
# handler. e500mc takes debug interrupts in the debug class (DSRR0/1, rfdi), e500v2 in the
# critical class (CSRR0/1, rfci); the guest picks by PVR.
# The handler appends {save/restore 0, DBSR, MSR in the handler, save/restore 1} (16-byte
# entries) to `dlog`, clears DBSR, and then:
# TIE -> skip the trap; IC -> count down r28 and disarm at 0; anything else -> disarm DBCR0.
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
    lis r27, dlog@h
    ori r27, r27, dlog@l
    mfmsr r3
    ori r3, r3, 0x0200           # MSR[DE]
    mtmsr r3
    # IAC1 on iac_target
    lis r3, iac_target@h
    ori r3, r3, iac_target@l
    mtspr IAC1, r3
    lis r3, IDM | IAC1E
    mtspr DBCR0, r3
    nop
    .globl iac_target
iac_target:
    addi r5, r5, 1
    # DAC1 write on dac_word
    lis r4, dac_word@h
    ori r4, r4, dac_word@l
    mtspr DAC1, r4
    lis r3, IDM | DAC1W
    mtspr DBCR0, r3
    li r6, 0x77
    .globl dac_store
dac_store:
    stw r6, 0(r4)
    # three instruction-complete events
    li r28, 3
    lis r3, IDM | IC
    mtspr DBCR0, r3
    .globl ic_first
ic_first:
    addi r7, r7, 1
    addi r7, r7, 1
    addi r7, r7, 1
    addi r7, r7, 1
    # a trap debug event instead of a program interrupt
    lis r3, IDM | TIE
    mtspr DBCR0, r3
    .globl tie_trap
tie_trap:
    tw 31, 0, 0
    li r3, 0
    mtspr DBCR0, r3
    lis r8, dlog@h
    ori r8, r8, dlog@l
    sub r3, r27, r8
    srwi r3, r3, 4               # number of debug interrupts taken
    .globl done
done:
    HOSTIO_DONE_WITH r3, r9
    b done

    .include "owndebug.inc"

    .data
    .align 3
    .globl dac_word
dac_word:
    .long 0
    .globl dlog
dlog:
    .space 16 * 16
