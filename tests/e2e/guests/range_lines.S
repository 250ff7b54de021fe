# Source lines of many instructions each, for range stepping through GDB (built with `as -g`,
# so every source line below is one line of GDB's line table, however many instructions its
# macro expands to). The `sc` line makes a system call amid its line; the guest's own handler
# counts it in `calls` and returns after it. Only _start is a text symbol (the rest are .L
# labels), so GDB sees one function; tests find the lines by their `# line:` markers.
    .include "hostio.inc"
    .include "spr.inc"

    .macro BUMP n
    .rept \n
    addi r3, r3, 1
    .endr
    .endm

    .macro SC_AMID n
    BUMP \n
    sc
    BUMP \n
    .endm

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r10, _start@h
    mtspr IVPR, r10
    li r11, .Lsc_h - _start
    mtspr IVOR8, r11
    lis r31, calls@h
    ori r31, r31, calls@l
    li r3, 0                     # line: first
    BUMP 60                      # line: a
    BUMP 80                      # line: b
    SC_AMID 30                   # line: sc
    BUMP 55                      # line: c
    li r4, 0                     # line: after
.Ldone:
    HOSTIO_DONE_WITH r3, r9
    b .Ldone

    .align 4
.Lsc_h:
    lwz r20, 0(r31)              # line: handler
    addi r20, r20, 1
    stw r20, 0(r31)
    rfi

    .data
    .align 4
    .globl calls
calls:
    .long 0
