# One of every exception a guest instruction raises on e500mc, each at a global label, taken by
# the guest's own handlers, which append {vector, SRR0, ESR} to `log` and count in `taken`:
# tw and twi with true conditions, tw with a false one (no exception), sc, an illegal word, the
# guest's own breakpoint word (KVM's software-breakpoint instruction, which the host hands back
# as a program interrupt), and mfmsr in user mode (privileged). Then an XER check: `addic` sets
# CA at `xer_set`; at `xer_use` `addze` adds it into r14 and `mfxer` reads XER into r15.
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
    li r5, 1
    li r6, 2
    .globl x_tw
x_tw:
    tw 31, r0, r0
    .globl x_twi
x_twi:
    twi 4, r5, 1                 # r5 == 1: traps
    .globl x_tw_false
x_tw_false:
    tw 4, r5, r6                 # r5 != r6: no trap
    .globl x_sc
x_sc:
    sc
    .globl x_illegal
x_illegal:
    .long 0
    .globl x_swbp
x_swbp:
    .long 0x00dddd00
    lis r3, user@h               # drop to problem state
    ori r3, r3, user@l
    mtspr SRR0, r3
    li r3, 0x4000                # MSR[PR]
    mtspr SRR1, r3
    rfi
user:
    .globl x_priv
x_priv:
    mfmsr r3
    li r0, 1                     # ask the sc handler to return to supervisor state
    sc
    .globl super
super:
    li r3, 1
    .globl xer_set
xer_set:
    addic r3, r3, -1             # CA = 1
    li r14, 0
    .globl xer_use
xer_use:
    addze r14, r14
    mfxer r15
    .globl done
done:
    HOSTIO_DONE_WITH r29, r9
    b done

    .macro LOG vec
    li r20, \vec
    mfspr r21, SRR0
    mfspr r23, ESR
    stw r20, 0(r30)
    stw r21, 4(r30)
    stw r23, 8(r30)
    addi r30, r30, 16
    addi r29, r29, 1
    lis r24, taken@h
    stw r29, taken@l(r24)
    .endm

    .align 4
    .globl prog_h
prog_h:
    LOG 6
    addi r21, r21, 4
    mtspr SRR0, r21
    rfi
    .align 4
    .globl sc_h
sc_h:
    LOG 8
    cmpwi r0, 1
    bne 1f
    li r0, 0
    lis r21, super@h
    ori r21, r21, super@l
    mtspr SRR0, r21
    li r22, 0
    mtspr SRR1, r22
1:  rfi

    .data
    .align 4
    .globl taken
taken:
    .long 0
    .align 4
    .globl log
log:
    .space 16 * 16
