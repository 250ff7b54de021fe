# A guest that owns its debug facility: IAC1 on `g_iac`, DAC1 (write) on `g_word`,
# DBCR0 = IDM | IAC1 | DAC1W and MSR[DE] = 1, with a debug handler on IVOR15 that logs
# {DSRR0 or CSRR0, DBSR} (8-byte entries to `dlog`) and steps over the instruction the way Linux
# does: an IAC/DAC event disarms them and arms instruction-complete (DBCR0[IC]), the IC event
# re-arms them. e500mc takes debug interrupts in the debug class (DSRR0/1, rfdi), e500v2 in the
# critical class (CSRR0/1, rfci); the guest picks by PVR. A program handler (IVOR6) counts in
# r26 and returns past the instruction (the `tw` in the body).
#
# Phases, between checkpoints: 1 = armed; body; 2; body; 3; the guest writes DBCR0 again (not
# IAC1/DAC1); body; done with the number of logged IAC/DAC events. The body runs g_iac and
# g_store, then material for host steps and points: a branch, a `bl` to h_func (which stores to
# `h_word` and returns with `blr`), and a `tw`.
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
    li r11, prog_h - _start
    mtspr IVOR6, r11
    lis r27, dlog@h
    ori r27, r27, dlog@l
    lis r4, g_word@h
    ori r4, r4, g_word@l
    lis r7, h_word@h
    ori r7, r7, h_word@l
    li r26, 0
    lis r3, g_iac@h
    ori r3, r3, g_iac@l
    mtspr IAC1, r3
    mtspr DAC1, r4
    lis r3, IDM | IAC1E | DAC1W
    mtspr DBCR0, r3
    mfmsr r3
    ori r3, r3, 0x0200           # MSR[DE]
    mtmsr r3
    li r3, 1
    HOSTIO_CHECKPOINT_WITH r3, r10
    bl body
    li r3, 2
    HOSTIO_CHECKPOINT_WITH r3, r10
    bl body
    li r3, 3
    HOSTIO_CHECKPOINT_WITH r3, r10
    lis r3, IDM | IAC1E | DAC1W
    mtspr DBCR0, r3
    bl body
    lis r8, dlog@h
    ori r8, r8, dlog@l
    sub r3, r27, r8
    srwi r3, r3, 3
    .globl done
done:
    HOSTIO_DONE_WITH r3, r10
    b done

body:
    mflr r31
    .globl g_iac
g_iac:
    addi r5, r5, 1
    .globl g_store
g_store:
    stw r5, 0(r4)
    .globl h_branch
h_branch:
    b h_bl
    nop
    .globl h_bl
h_bl:
    bl h_func
    .globl h_tw
h_tw:
    tw 31, 0, 0
    .globl h_after_tw
h_after_tw:
    mtlr r31
    blr

    .globl h_func
h_func:
    addi r6, r6, 1
    .globl h_store
h_store:
    stw r6, 0(r7)
    .globl h_blr
h_blr:
    blr

    .macro DBG_BODY srr0, rfx
    mfspr r20, \srr0
    mfspr r21, DBSR
    li r22, -1
    mtspr DBSR, r22              # write-1-to-clear
    andis. r22, r21, IC
    bne 1f
    stw r20, 0(r27)
    stw r21, 4(r27)
    addi r27, r27, 8
    lis r22, IDM | IC            # run the instruction with IAC1/DAC1 off, then re-arm
    b 2f
1:  lis r22, IDM | IAC1E | DAC1W
2:  mtspr DBCR0, r22
    \rfx
    .endm

    .align 4
dbg_h_mc:
    DBG_BODY DSRR0, rfdi
    .align 4
dbg_h_v2:
    DBG_BODY CSRR0, rfci
    .align 4
    .globl prog_h
prog_h:
    mfspr r23, SRR0
    addi r23, r23, 4
    mtspr SRR0, r23
    addi r26, r26, 1
    rfi

    .data
    .align 3
    .globl g_word
g_word:
    .long 0
    .globl h_word
h_word:
    .long 0
    .globl dlog
dlog:
    .space 8 * 16
