# A 64-bit guest with its own program and system-call handlers, taken in 64-bit mode
# (EPCR[ICM]). It executes a trap (`own_trap`), a system call (`own_sc`) and the kernel's
# software-breakpoint word (`own_swbp`, an illegal instruction to the guest); each handler appends
# {vector, SRR0, SRR1, ESR, MSR in the handler} (five doublewords) to `log` and returns past the
# instruction (to SRR0 for sc). Then a loop (`loop_top`..) counts `counter` up three times
# (`store_insn` writes it), reporting checkpoints 1-3. The guest reports the number of handled
# interrupts through HOSTIO_DONE. r29 counts, r30 is the log cursor, r20-r24 are the handlers'.
    .include "hostio.inc"
    .include "spr.inc"

    # Log {vector, SRR0, SRR1, ESR, MSR} and return, past the instruction if `skip`.
    .macro HANDLER vec, skip
    li r20, \vec
    std r20, 0(r30)
    mfspr r21, SRR0
    std r21, 8(r30)
    mfspr r22, SRR1
    std r22, 16(r30)
    mfspr r23, ESR
    std r23, 24(r30)
    mfmsr r24
    std r24, 32(r30)
    addi r30, r30, 40
    addi r29, r29, 1
    .if \skip
    addi r21, r21, 4
    mtspr SRR0, r21
    .endif
    rfi
    .endm

    GUEST64_START
    li r11, prog_h - _start
    mtspr IVOR6, r11
    li r11, sc_h - _start
    mtspr IVOR8, r11
    LI32 r30, log
    li r29, 0
    ENTER_64 r12
    .globl in_64
in_64:
    li r5, 1
    sldi r5, r5, 40              # a value only 64 bits hold
    .globl own_trap
own_trap:
    tw 31, 0, 0
    .globl own_sc
own_sc:
    sc
    .globl own_swbp
own_swbp:
    .long 0x00dddd00
    LI32 r8, counter
    li r6, 3
    mtctr r6
    .globl loop_top
loop_top:
    ld r7, 0(r8)
    addi r7, r7, 1
    .globl store_insn
store_insn:
    std r7, 0(r8)
    HOSTIO_CHECKPOINT_WITH r7, r9
    bdnz loop_top
    .globl done
done:
    HOSTIO_DONE_WITH r29, r9
    b done

    .balign 16
prog_h:
    HANDLER 6, 1
    .align 4
sc_h:
    HANDLER 8, 0

    .data
    .align 3
    .globl counter
counter:
    .quad 0
    .globl log
log:
    .space 40 * 8
