# The demo guest shipped with guestdbg_booke: a guest kernel in miniature that a debugger can
# find its way around. It installs its own program-interrupt handler, then loops forever:
# `work` sums 1..n into `total` (a call with a stack frame, loads and stores) and `rounds`
# counts the rounds (`rounds_load` reads it, `rounds_store` writes it). Two exceptions in the
# loop belong to the guest, not to a debugger:
#
# * every `trap_every` rounds a `tw` (`guest_trap`): the kernel delivers it to the guest itself
#   (a trap never leaves KVM_RUN); the handler counts it in `traps`.
# * every `bug_every` rounds (0, the default, is never: set it from the debugger) the guest
#   executes the breakpoint word 0x00dddd00 itself (`guest_bug`), as a guest kernel's BUG() or
#   kgdb trap would. While a host debugger has
#   software breakpoints in place, KVM exits to userspace for it like for the host's own; the
#   debugger must hand it back as the illegal-instruction program interrupt the hardware would
#   have raised (ESR[PIL]). The handler counts it in `bugs` and resumes at `after_bug`.
#
# The handler tells the two apart by ESR (PTR: a trap; otherwise illegal) and keeps the last
# ESR it saw in `last_esr`. Each round ends with a host-I/O checkpoint (guest-physical
# 0xE0000004, KVM_EXIT_MMIO) carrying `rounds`.
#
# Built with `--defsym GUEST64=1` (guests/build.py build64) it is the demo of the 64-bit cores
# (e5500, e6500): it enters 64-bit mode first (EPCR[ICM], MSR[CM]; boot64.inc), `work` keeps a
# 64-bit stack frame (stdu, std, ld), and each round adds its sum << 24 to the doubleword
# `total64`, which passes 2**32 after 86 rounds.
    .include "hostio.inc"
    .include "spr.inc"
    .ifdef GUEST64
    .include "boot64.inc"
    .endif
    .set ESR_PTR_HI, 0x0200      # ESR[PTR] = 0x02000000, as an andis. immediate

    .section .text.start, "ax"
    .globl _start
_start:
    .ifdef GUEST64
    ENTER_64BIT r10
    HOSTIO64_MAP r9
    .else
    HOSTIO_MAP r9
    .endif
    lis r10, _start@h
    mtspr IVPR, r10
    li r11, program_handler - _start
    mtspr IVOR6, r11
    lis r31, vars@h
    ori r31, r31, vars@l
    .globl main_loop
main_loop:
    li r3, 100
    bl work
    stw r3, 0(r31)               # total
    .ifdef GUEST64
    ld r5, 32(r31)               # total64 += total << 24
    sldi r3, r3, 24
    add r5, r5, r3
    std r5, 32(r31)
    .endif
    .globl rounds_load
rounds_load:
    lwz r4, 4(r31)               # rounds
    addi r4, r4, 1
    .globl rounds_store
rounds_store:
    stw r4, 4(r31)
    lwz r5, 12(r31)              # trap_every
    divwu r6, r4, r5
    mullw r6, r6, r5
    cmpw r6, r4
    bne 1f
    .globl guest_trap
guest_trap:
    tw 31, 0, 0
1:
    lwz r5, 20(r31)              # bug_every
    cmpwi r5, 0
    beq round_done
    divwu r6, r4, r5
    mullw r6, r6, r5
    cmpw r6, r4
    bne round_done
    .globl guest_bug
guest_bug:
    .long 0x00dddd00             # the guest's own breakpoint word (BUG())
    .globl after_bug
after_bug:
    nop
    .globl round_done
round_done:
    .ifdef GUEST64
    HOSTIO64_CHECKPOINT_WITH r4, r9
    .else
    HOSTIO_CHECKPOINT_WITH r4, r9
    .endif
    b main_loop

# work(n): 1 + 2 + ... + n
    .globl work
work:
    .ifdef GUEST64
    stdu r1, -32(r1)
    mflr r0
    std r0, 48(r1)
    .else
    stwu r1, -16(r1)
    mflr r0
    stw r0, 20(r1)
    .endif
    li r4, 0
    mtctr r3
2:  add r4, r4, r3
    addi r3, r3, -1
    bdnz 2b
    mr r3, r4
    .ifdef GUEST64
    ld r0, 48(r1)
    mtlr r0
    addi r1, r1, 32
    .else
    lwz r0, 20(r1)
    mtlr r0
    addi r1, r1, 16
    .endif
    blr

    .align 4
    .globl program_handler
program_handler:
    mfspr r22, ESR
    stw r22, 24(r31)             # last_esr
    andis. r23, r22, ESR_PTR_HI
    beq 3f
    lwz r20, 8(r31)              # a trap: traps += 1
    addi r20, r20, 1
    stw r20, 8(r31)
    b 4f
3:  lwz r20, 16(r31)             # an illegal instruction: bugs += 1
    addi r20, r20, 1
    stw r20, 16(r31)
4:  mfspr r21, SRR0
    addi r21, r21, 4             # skip the trapping word
    mtspr SRR0, r21
    rfi

    .data
    .align 4
vars:
    .globl total
total:
    .long 0
    .globl rounds
rounds:
    .long 0
    .globl traps
traps:
    .long 0
    .globl trap_every
trap_every:
    .long 3
    .globl bugs
bugs:
    .long 0
    .globl bug_every
bug_every:
    .long 0
    .globl last_esr
last_esr:
    .long 0
    .ifdef GUEST64
    .long 0                      # pad: total64 is a doubleword at vars + 32
    .globl total64
total64:
    .quad 0
    .endif
