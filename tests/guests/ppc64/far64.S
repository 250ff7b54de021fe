# A 64-bit guest that runs code and data above 4 GiB. The VMM gives it RAM at guest-physical
# FAR_BASE (4 GiB; the emulated host translates effective = physical). The guest copies `snippet`
# there and calls it twice in 64-bit mode; the snippet stores r5 at FAR_BASE + 0x100, executes
# the kernel's software-breakpoint word at FAR_BASE + 4 itself (an illegal instruction to the
# guest: its program handler logs {SRR0, SRR1, ESR, MSR in the handler} to `plog` and skips it)
# and returns. With `OWN_IAC` set (r3 = 1 from the host), the guest first arms its
# own IAC1 on FAR_BASE (DBCR0 = IDM | IAC1, MSR[DE]) and its debug handler logs {DSRR0, DBSR,
# MSR in the handler} to `dlog` and disarms. Reports r5 (the last value stored) through
# HOSTIO_DONE; `dlog` holds what its own debug handler saw.
    .include "hostio.inc"
    .include "spr.inc"

    .set FAR_HI, 1                   # FAR_BASE = FAR_HI << 32

    GUEST64_START
    li r11, dbg_h - _start
    mtspr IVOR15, r11
    li r11, prog_h - _start
    mtspr IVOR6, r11
    LI32 r27, dlog
    LI32 r26, plog
    ENTER_64 r12
    li r4, FAR_HI
    sldi r4, r4, 32              # r4 = FAR_BASE
    LI32 r6, snippet             # copy the snippet (4 words)
    li r7, 4
    mtctr r7
    mr r8, r4
1:  lwz r7, 0(r6)
    stw r7, 0(r8)
    dcbst 0, r8
    icbi 0, r8
    addi r6, r6, 4
    addi r8, r8, 4
    bdnz 1b
    sync
    isync
    cmpdi r3, 1
    bne calls
    mtspr IAC1, r4               # the guest's own IAC on a 64-bit address
    LI32 r7, (IDM | IAC1E) << 16
    mtspr DBCR0, r7
    mfmsr r7
    ori r7, r7, 0x200            # MSR[DE]
    mtmsr r7
    isync
calls:
    li r5, 0x11
    mtctr r4
    .globl far_call_1
far_call_1:
    bctrl
    li r5, 0x22
    mtctr r4
    .globl far_call_2
far_call_2:
    bctrl
    .globl done
done:
    HOSTIO_DONE_WITH r5, r9
    b done

snippet:
    stw r5, 0x100(r4)
    .long 0x00dddd00
    blr
    nop

    .align 4
prog_h:
    mfspr r20, SRR0
    std r20, 0(r26)
    mfspr r21, SRR1
    std r21, 8(r26)
    mfspr r22, ESR
    std r22, 16(r26)
    mfmsr r23
    std r23, 24(r26)
    addi r26, r26, 32
    addi r20, r20, 4
    mtspr SRR0, r20
    rfi

    .align 4
dbg_h:
    mfspr r20, DSRR0
    mfspr r21, DBSR
    mfmsr r23
    std r20, 0(r27)
    std r21, 8(r27)
    std r23, 16(r27)
    addi r27, r27, 24
    li r22, -1
    mtspr DBSR, r22
    li r22, 0
    mtspr DBCR0, r22
    rfdi

    .data
    .align 3
    .globl dlog
dlog:
    .space 24 * 4
    .globl plog
plog:
    .space 32 * 4
