# The guest of examples/emulated_e500mc_vmm.py and examples/migration.py: three rounds, each
#
#   hw_target:     addi r4, r4, 1       the hardware breakpoint (IAC) the examples set
#                  nop
#   sw_target:     mr r5, r4            the software breakpoint (a trap word in guest memory)
#   store_counter: stw r5, counter      the write watchpoint on `counter` (DAC, before the store)
#   own_break:     0x00dddd00           the guest's OWN breakpoint word, as a guest kernel's BUG()
#                                       or kgdb trap would run it; its program-interrupt handler
#                                       counts it in `handled` and resumes after it
#   after_own:     checkpoint(r4)       a host-I/O store (KVM_EXIT_MMIO) the device model logs
#
# then done(handled). While the host has software breakpoints in, KVM exits to userspace for the
# guest's own word too; guestdbg must hand it back as the program interrupt (ESR[PIL]) the
# hardware would have raised, so `handled` ends at 3 whatever the debugger did.
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
    li r4, 0
    .globl hw_target
hw_target:
    addi r4, r4, 1
    nop                          # GDB steps off a breakpoint by one instruction: keep it off sw_target
    .globl sw_target
sw_target:
    mr r5, r4
    .globl store_counter
store_counter:
    stw r5, 0(r31)               # counter
    .globl own_break
own_break:
    .long 0x00dddd00
    .globl after_own
after_own:
    HOSTIO_CHECKPOINT_WITH r4, r9
    cmpwi r4, 3
    blt hw_target
    lwz r5, 4(r31)               # handled
    .globl done
done:
    HOSTIO_DONE_WITH r5, r9
    b done

    .align 4
    .globl program_handler
program_handler:
    lwz r20, 4(r31)
    addi r20, r20, 1
    stw r20, 4(r31)              # handled += 1
    mfspr r21, SRR0
    addi r21, r21, 4             # resume after the breakpoint word
    mtspr SRR0, r21
    rfi

    .data
    .align 3
vars:
    .globl counter
counter:
    .long 0
    .globl handled
handled:
    .long 0
