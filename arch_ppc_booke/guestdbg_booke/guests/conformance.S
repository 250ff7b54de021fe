# The guest the conformance kit (guestdbg.testing) runs on the emulated e500 hosts.
#
# After installing its program-interrupt handler it loops forever over four instructions,
# `code0`..`code3`: `code0` reads the doubleword-aligned word `watched`, `code2` writes it back
# incremented. Nothing in the loop leaves KVM_RUN unless a debugger arms something, so every
# stop the kit sees is one of its own points.
#
# `own_break` is the guest's own breakpoint word (0x00dddd00, KVM_REG_PPC_DEBUG_INST on current
# kernels), as a guest kernel's BUG() or kgdb trap would be; the loop never runs it, the kit
# only asks the plugin what a status-0 exit there means. `own_ehpriv` is the guest's own
# `ehpriv 1`, which KVM turns into the same exit whatever guest_debug says
# (e500_emulate.c kvmppc_e500_emul_ehpriv). The program handler skips the
# offending word (SRR0 + 4) and counts it in `programs`, as a guest OS would.
#
# Built with `--defsym GUEST64=1` (guests/build.py build64) it is the guest of the 64-bit cores
# (e5500, e6500): it first enters 64-bit mode (EPCR[ICM], MSR[CM]; boot64.inc) and `watched` is
# loaded and stored as a doubleword, so every watch length up to 8 is hit.
    .include "spr.inc"
    .ifdef GUEST64
    .include "boot64.inc"
    .endif

    .section .text.start, "ax"
    .globl _start
_start:
    .ifdef GUEST64
    ENTER_64BIT r10
    .endif
    lis r10, _start@h
    mtspr IVPR, r10
    li r11, program_handler - _start
    mtspr IVOR6, r11
    lis r31, watched@h
    ori r31, r31, watched@l
    .globl code0, code1, code2, code3
code0:
    .ifdef GUEST64
    ld r4, 0(r31)
    .else
    lwz r4, 0(r31)
    .endif
code1:
    addi r4, r4, 1
code2:
    .ifdef GUEST64
    std r4, 0(r31)
    .else
    stw r4, 0(r31)
    .endif
code3:
    b code0

    .globl own_break, own_ehpriv
own_break:
    .long 0x00dddd00
own_ehpriv:
    .long 0x7c000a1c            # ehpriv 1
    b code0

    .balign 16
program_handler:
    mfspr r10, SRR0
    addi r10, r10, 4
    mtspr SRR0, r10
    lwz r10, 8(r31)             # programs
    addi r10, r10, 1
    stw r10, 8(r31)
    rfi

    .data
    .balign 8
    .globl watched, programs
watched:
    .long 0, 0
programs:
    .long 0
