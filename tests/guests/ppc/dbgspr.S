# Writes the debug SPRs, then reports what reading them gives, one checkpoint per register:
# DBCR0, DBCR1, DBCR2, IAC1, DAC1, DBSR, and finally the MSR after trying to clear MSR[DE].
    .include "hostio.inc"
    .include "spr.inc"

    .macro REPORT spr
    mfspr r3, \spr
    HOSTIO_CHECKPOINT_WITH r3, r9
    .endm

    .section .text.start, "ax"
    .globl _start
_start:
    HOSTIO_MAP r9
    lis r3, 0x0010
    ori r3, r3, 0x0100
    mtspr IAC1, r3               # IAC1 = 0x00100100
    lis r3, 0x0020
    mtspr DAC1, r3               # DAC1 = 0x00200000
    lis r3, 0x4088               # IDM | IAC1 | DAC1R
    ori r3, r3, 0x8000           # | RET (not in the kernel's mask)
    mtspr DBCR0, r3
    lis r3, 0x8000
    mtspr DBCR1, r3              # IAC1US = 10 (supervisor only)
    lis r3, 0x8000
    mtspr DBCR2, r3              # DAC1US = 10
    .globl reports
reports:
    REPORT DBCR0
    REPORT DBCR1
    REPORT DBCR2
    REPORT IAC1
    REPORT DAC1
    REPORT DBSR
    mfmsr r3
    rlwinm r3, r3, 0, 23, 21     # clear MSR[DE] (bit 22 in IBM numbering, 0x200)
    mtmsr r3
    mfmsr r3
    HOSTIO_CHECKPOINT_WITH r3, r9
    .globl done
done:
    li r3, 0
    HOSTIO_DONE_WITH r3, r9
    b done
