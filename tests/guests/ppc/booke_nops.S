# A long straight run of code for breakpoint-table benchmarks: every vCPU starts at _start,
# walks `sled` (NOPS no-ops) and loops. Breakpoints go on the sled; nothing else is touched.
    .set NOPS, 10240

    .section .text.start, "ax"
    .globl _start
_start:
    li r3, 0
    .globl sled
sled:
    .rept NOPS
    nop
    .endr
    .globl sled_end
sled_end:
    addi r3, r3, 1
    b sled
