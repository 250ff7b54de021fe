# The range-stepping benchmark's guest (bench/vs_qemu.py), assembled with `as -g`, the same ELF
# for QEMU ppce500 and the emulated e500mc host: an endless loop of source lines of LINE_INSNS
# instructions each (one macro per line) that add LINE_INSNS to r3, one per instruction, so
# GDB's `next` steps one long line at a time and r3 tells how many lines ran. The last line ends
# with the branch back to the first. Only _start is a text symbol, a function with call-frame
# information (.debug_frame), as a compiler emits it: GDB unwinds from that instead of scanning
# the function's code word by word at every stop, on both targets alike. No host I/O.
    .set LINE_INSNS, 60

    .macro BUMP n
    .rept \n
    addi r3, r3, 1
    .endr
    .endm

    .macro BUMP_BACK n
    BUMP \n
    b .Lloop
    .endm

    .cfi_sections .debug_frame
    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    .cfi_startproc
    li r3, 0
.Lloop:
    BUMP LINE_INSNS              # line: first
    BUMP LINE_INSNS
    BUMP LINE_INSNS
    BUMP LINE_INSNS
    BUMP LINE_INSNS
    BUMP LINE_INSNS
    BUMP LINE_INSNS
    BUMP_BACK LINE_INSNS         # line: last
    .cfi_endproc
    .size _start, . - _start
