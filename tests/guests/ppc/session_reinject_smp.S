# session_reinject for several vCPUs: each vCPU (told apart by PIR) executes its own breakpoint
# word once; the shared program handler counts in the vCPU's own slot of `handled` (so the
# vCPUs never race on one word) and returns past the word. Then each vCPU reports done(PIR).
    .include "hostio.inc"
    .include "spr.inc"

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r10, _start@h
    mtspr IVPR, r10
    li r11, program_handler - _start
    mtspr IVOR6, r11
    mfspr r12, PIR
    lis r31, handled@h
    ori r31, r31, handled@l
    slwi r13, r12, 2
    add r31, r31, r13            # &handled[PIR]
    .globl own_trap
own_trap:
    .long 0x00dddd00
    .globl done
done:
    HOSTIO_DONE_WITH r12, r9
    b done
    .globl unused
unused:
    nop

    .globl program_handler
program_handler:
    lwz r20, 0(r31)
    addi r20, r20, 1
    stw r20, 0(r31)
    mfspr r21, SRR0
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi

    .data
    .align 3
    .globl handled
handled:
    .space 4 * 8
