# The demo guest shipped with guestdbg_booke: a guest kernel in miniature that a debugger can
# find its way around. It installs its own program-interrupt handler, then loops forever:
# `work` sums 1..n into `total` (a call with a stack frame, loads and stores), and every
# `trap_every` rounds it executes a `tw` that its own handler counts in `traps` - an exception
# that belongs to the guest, not to the debugger. Each round it reports `rounds` as a host-I/O
# checkpoint (guest-physical 0xE0000004). Symbols: work, round_done, total, rounds, traps.
    .include "hostio.inc"
    .set SRR0, 0x01A
    .set IVPR, 0x03F
    .set IVOR6, 0x196

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
main_loop:
    li r3, 100
    bl work
    stw r3, 0(r31)               # total
    lwz r4, 4(r31)               # rounds
    addi r4, r4, 1
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
    .globl round_done
round_done:
    HOSTIO_CHECKPOINT_WITH r4, r9
    b main_loop

# work(n): 1 + 2 + ... + n
    .globl work
work:
    stwu r1, -16(r1)
    mflr r0
    stw r0, 20(r1)
    li r4, 0
    mtctr r3
2:  add r4, r4, r3
    addi r3, r3, -1
    bdnz 2b
    mr r3, r4
    lwz r0, 20(r1)
    mtlr r0
    addi r1, r1, 16
    blr

    .align 4
    .globl program_handler
program_handler:
    lwz r20, 8(r31)              # traps
    addi r20, r20, 1
    stw r20, 8(r31)
    mfspr r21, SRR0
    addi r21, r21, 4             # skip the trap
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
