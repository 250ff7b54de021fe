# Read watchpoints next to software breakpoints (tests/emuhost/test_watch_after_trap_write.py):
# each round loads a neighbour of each watched word (same page, not watched), passes
# `bp_site`, where the host plants and removes its trap word, then loads `wtext` (a word on the
# code page, the trap's own page) and `wdata` (a word on the data page), and reports the round
# as a checkpoint; r7 and r8, the watched loads' targets, are cleared first in each round. After
# three rounds the guest reports the sum of everything it loaded.
    .include "hostio.inc"
    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, wtext@h
    ori r3, r3, wtext@l
    lis r4, wdata@h
    ori r4, r4, wdata@l
    li r10, 0
    li r11, 0
round:
    li r7, 0
    li r8, 0
    .globl touch_text
touch_text:
    lwz r5, 4(r3)
    .globl touch_data
touch_data:
    lwz r6, 4(r4)
    .globl bp_site
bp_site:
    addi r10, r10, 1
    .globl load_text
load_text:
    lwz r7, 0(r3)
    .globl load_data
load_data:
    lwz r8, 0(r4)
    add r11, r11, r5
    add r11, r11, r6
    add r11, r11, r7
    add r11, r11, r8
    HOSTIO_CHECKPOINT_WITH r10, r9
    cmpwi r10, 3
    blt round
    .globl done
done:
    HOSTIO_DONE_WITH r11, r9
    b done

    .align 4
    .globl wtext
wtext:
    .long 0x100
    .long 0x1

    .data
    .globl wdata
wdata:
    .long 0x10000
    .long 0x1000
