# A guest that goes to sleep: it sets MSR[WE] (wait enable) and, with no interrupt ever coming
# on the emulated host, KVM blocks the vCPU in kvmppc_core_prepare_to_enter until a signal.
    .section .text.start, "ax"
    .globl _start
_start:
    mfmsr r3
    oris r3, r3, 0x0004          # MSR[WE]
    .globl sleep
sleep:
    mtmsr r3
    .globl woken
woken:
    nop
    b woken
