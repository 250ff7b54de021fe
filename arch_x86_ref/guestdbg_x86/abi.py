"""The x86-64 KVM uapi as the x86 reference plugin uses it (``arch/x86/include/uapi/asm/kvm.h``)."""

from __future__ import annotations

from guestdbg.kvm import ioc
from guestdbg.kvm.uapi import AbiLayout, ArchAbi

CDEF = """
struct kvm_regs {
    uint64_t rax, rbx, rcx, rdx; uint64_t rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11; uint64_t r12, r13, r14, r15;
    uint64_t rip, rflags;
};
struct kvm_segment {
    uint64_t base; uint32_t limit; uint16_t selector; uint8_t type;
    uint8_t present, dpl, db, s, l, g, avl; uint8_t unusable; uint8_t padding;
};
struct kvm_dtable { uint64_t base; uint16_t limit; uint16_t padding[3]; };
struct kvm_sregs {
    struct kvm_segment cs, ds, es, fs, gs, ss; struct kvm_segment tr, ldt;
    struct kvm_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8; uint64_t efer; uint64_t apic_base;
    uint64_t interrupt_bitmap[4];
};
struct kvm_debug_exit_arch {
    uint32_t exception; uint32_t pad; uint64_t pc; uint64_t dr6; uint64_t dr7;
};
struct kvm_guest_debug_arch { uint64_t debugreg[8]; };
struct kvm_debugregs {
    uint64_t db[4]; uint64_t dr6; uint64_t dr7; uint64_t flags; uint64_t reserved[9];
};
struct kvm_vcpu_events {
    struct { uint8_t injected; uint8_t nr; uint8_t has_error_code; uint8_t pending;
             uint32_t error_code; } exception;
    struct { uint8_t injected; uint8_t nr; uint8_t soft; uint8_t shadow; } interrupt;
    struct { uint8_t injected; uint8_t pending; uint8_t masked; uint8_t pad; } nmi;
    uint32_t sipi_vector;
    uint32_t flags;
    struct { uint8_t smm; uint8_t pending; uint8_t smm_inside_nmi; uint8_t latched_init; } smi;
    struct { uint8_t pending; } triple_fault;
    uint8_t reserved[26];
    uint8_t exception_has_payload;
    uint64_t exception_payload;
};
"""

KVM_GUESTDBG_USE_SW_BP = 0x00010000
KVM_GUESTDBG_USE_HW_BP = 0x00020000
KVM_GUESTDBG_INJECT_DB = 0x00040000
KVM_GUESTDBG_INJECT_BP = 0x00080000
KVM_GUESTDBG_BLOCKIRQ = 0x00100000

KVM_VCPUEVENT_VALID_NMI_PENDING = 0x00000001
KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x00000002
KVM_VCPUEVENT_VALID_SHADOW = 0x00000004
KVM_VCPUEVENT_VALID_SMM = 0x00000008
KVM_VCPUEVENT_VALID_PAYLOAD = 0x00000010
KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x00000020

KVM_SYNC_X86_REGS = 0x00000001
"""In ``kvm_run.kvm_valid_regs``: the kernel copies ``struct kvm_regs`` to ``kvm_run.s`` on exit."""
KVM_SYNC_X86_SREGS = 0x00000002
KVM_SYNC_X86_EVENTS = 0x00000004
"""``struct kvm_sync_regs`` is ``kvm_regs``, ``kvm_sregs``, ``kvm_vcpu_events``, back to back."""

CONSTANTS = {
    name: value
    for name, value in dict(globals()).items()
    if name.startswith("KVM_") and isinstance(value, int)
}

X86_ABI = ArchAbi(
    kvm_host_arch="x86_64",
    byteorder="little",
    encoding=ioc.GENERIC,
    cdef=CDEF,
    structs=(
        "struct kvm_regs",
        "struct kvm_segment",
        "struct kvm_dtable",
        "struct kvm_sregs",
        "struct kvm_debug_exit_arch",
        "struct kvm_guest_debug_arch",
        "struct kvm_debugregs",
        "struct kvm_vcpu_events",
    ),
    constants=CONSTANTS,
    sync_regs_bit=KVM_SYNC_X86_REGS,
    sync_copies=(
        ("KVM_GET_SREGS", KVM_SYNC_X86_SREGS, "struct kvm_sregs"),
        ("KVM_GET_VCPU_EVENTS", KVM_SYNC_X86_EVENTS, "struct kvm_vcpu_events"),
    ),
)

_layout: AbiLayout | None = None


def layout() -> AbiLayout:
    global _layout
    if _layout is None:
        _layout = AbiLayout(X86_ABI)
    return _layout
