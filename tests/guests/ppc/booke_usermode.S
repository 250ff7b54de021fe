# Host breakpoints in guest supervisor and problem state: the guest runs `s_insn` in supervisor
# state, drops to problem state (rfi with MSR[PR]) to run `u_insn`, and comes back with `sc`
# (r0 = 1 asks the system-call handler for it). Its program handler logs {SRR0, ESR} (8-byte
# entries to `log`), counts in r29 and returns past the instruction. r5 and r6 count the runs of
# s_insn and u_insn; the guest reports r29 through HOSTIO_DONE.
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
    lis r30, log@h
    ori r30, r30, log@l
    li r29, 0
    li r5, 0
    li r6, 0
    .globl s_insn
s_insn:
    addi r5, r5, 1
    lis r3, user_code@h
    ori r3, r3, user_code@l
    mtspr SRR0, r3
    li r3, 0x4000                # MSR[PR]
    mtspr SRR1, r3
    rfi
user_code:
    .globl u_insn
u_insn:
    addi r6, r6, 1
    li r0, 1
    sc
    .globl back_in_super
back_in_super:
    HOSTIO_DONE_WITH r29, r9
    b back_in_super

    .align 4
prog_h:
    mfspr r20, SRR0
    mfspr r21, ESR
    stw r20, 0(r30)
    stw r21, 4(r30)
    addi r30, r30, 8
    addi r29, r29, 1
    addi r20, r20, 4
    mtspr SRR0, r20
    rfi
    .align 4
sc_h:
    lis r20, back_in_super@h
    ori r20, r20, back_in_super@l
    mtspr SRR0, r20
    li r20, 0
    mtspr SRR1, r20
    rfi

    .data
    .align 3
    .globl log
log:
    .space 8 * 4
