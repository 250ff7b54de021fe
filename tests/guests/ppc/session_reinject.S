# A guest that executes its own breakpoint instruction (0x00dddd00, as a guest kernel's BUG() or
# kgdb trap would) and handles the program interrupt itself: the handler counts in `handled`,
# records SRR0 in `last_srr0` and ESR in `last_esr`, and returns past the instruction.
# Host I/O: checkpoint(handled) after the trap returned, then done(handled).
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
    lis r31, vars@h
    ori r31, r31, vars@l
    .globl before_trap
before_trap:
    nop
    .globl own_trap
own_trap:
    .long 0x00dddd00
    .globl after_trap
after_trap:
    lwz r4, 0(r31)
    HOSTIO_CHECKPOINT_WITH r4, r9
    lwz r4, 0(r31)
    .globl done
done:
    HOSTIO_DONE_WITH r4, r9
    b done
    .globl unused
unused:
    nop
    nop

    .globl program_handler
program_handler:
    lwz r20, 0(r31)
    addi r20, r20, 1
    stw r20, 0(r31)              # handled
    mfspr r21, SRR0
    stw r21, 4(r31)              # last_srr0
    mfspr r22, ESR
    stw r22, 8(r31)              # last_esr
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi

    .data
    .align 3
    .globl vars
vars:
    .long 0, 0, 0
