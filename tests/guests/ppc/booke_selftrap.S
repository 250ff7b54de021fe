# The guest executes the kernel's software-breakpoint word itself (`own_trap_1`, `own_trap_2`,
# three rounds) and handles the resulting program interrupts with its own handler, which logs
# {SRR0, SRR1, ESR, the MSR the guest read just before the trap} (16-byte entries) to `log`,
# counts in r29 and returns past the word. `host_site` is where a host debugger puts its own
# breakpoint. The guest reports r29 through HOSTIO_DONE.
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
    lis r30, log@h
    ori r30, r30, log@l
    li r29, 0
    li r28, 3
round:
    mfmsr r25
    .globl own_trap_1
own_trap_1:
    .long 0x00dddd00
    .globl host_site
host_site:
    addi r26, r26, 1
    mfmsr r25
    .globl own_trap_2
own_trap_2:
    .long 0x00dddd00
    addi r28, r28, -1
    cmpwi r28, 0
    bne round
    .globl done
done:
    HOSTIO_DONE_WITH r29, r9
    b done

    .align 4
prog_h:
    mfspr r20, SRR0
    mfspr r21, SRR1
    mfspr r22, ESR
    stw r20, 0(r30)
    stw r21, 4(r30)
    stw r22, 8(r30)
    stw r25, 12(r30)
    addi r30, r30, 16
    addi r29, r29, 1
    addi r20, r20, 4
    mtspr SRR0, r20
    rfi

    .data
    .align 4
    .globl log
log:
    .space 16 * 8
