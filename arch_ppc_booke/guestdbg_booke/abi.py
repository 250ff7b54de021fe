"""The PowerPC KVM uapi as the BookE plugin uses it (``arch/powerpc/include/uapi/asm/kvm.h``).

Big-endian PowerPC, powerpc ``_IOC`` encoding. Every field is a fixed-width ``__u32``/``__u64``
and ``__u64`` is 8-aligned in both the 32-bit SysV ABI and the 64-bit one, so one layout serves
the 32-bit cores' kernels (e500v2, e500mc) and the 64-bit kernels of e5500 and e6500: the ABI
truth test compiles it for both (``tests/test_abi_truth.py``, ``tests/booke/test_abi64.py``).
Names follow the header so each declaration is compared with the real one.
"""

from __future__ import annotations

from guestdbg.kvm import ioc
from guestdbg.kvm.uapi import AbiLayout, ArchAbi

CDEF = """
struct kvm_regs {
    uint64_t pc; uint64_t cr; uint64_t ctr; uint64_t lr; uint64_t xer; uint64_t msr;
    uint64_t srr0; uint64_t srr1; uint64_t pid;
    uint64_t sprg0; uint64_t sprg1; uint64_t sprg2; uint64_t sprg3;
    uint64_t sprg4; uint64_t sprg5; uint64_t sprg6; uint64_t sprg7;
    uint64_t gpr[32];
};
struct kvm_sregs {
    uint32_t pvr;
    union {
        struct {
            uint64_t sdr1;
            struct { struct { uint64_t slbe; uint64_t slbv; } slb[64]; } ppc64;
            struct { uint32_t sr[16]; uint64_t ibat[8]; uint64_t dbat[8]; } ppc32;
        } s;
        struct {
            union {
                struct {
                    uint32_t features; uint32_t svr; uint64_t mcar; uint32_t hid0;
                    uint32_t pid1; uint32_t pid2;
                } fsl;
                uint8_t pad[256];
            } impl;
            uint32_t features; uint32_t impl_id; uint32_t update_special; uint32_t pir;
            uint64_t sprg8; uint64_t sprg9; uint64_t csrr0; uint64_t dsrr0; uint64_t mcsrr0;
            uint32_t csrr1; uint32_t dsrr1; uint32_t mcsrr1; uint32_t esr;
            uint64_t dear; uint64_t ivpr; uint64_t mcivpr; uint64_t mcsr;
            uint32_t tsr; uint32_t tcr; uint32_t decar; uint32_t dec;
            uint64_t tb;
            uint32_t dbsr; uint32_t dbcr[3]; uint32_t iac[4]; uint32_t dac[2]; uint32_t dvc[2];
            uint8_t num_iac; uint8_t num_dac; uint8_t num_dvc; uint8_t pad;
            uint32_t epr; uint32_t vrsave; uint32_t epcr;
            uint32_t mas0; uint32_t mas1; uint64_t mas2; uint64_t mas7_3;
            uint32_t mas4; uint32_t mas6;
            uint32_t ivor_low[16]; uint32_t ivor_high[18];
            uint32_t mmucfg; uint32_t eptcfg; uint32_t tlbcfg[4]; uint32_t tlbps[4];
            uint32_t eplc; uint32_t epsc;
        } e;
        uint8_t pad[1020];
    } u;
};
struct kvm_fpu { uint64_t fpr[32]; };
struct kvm_debug_exit_arch { uint64_t address; uint32_t status; uint32_t reserved; };
struct kvm_guest_debug_arch {
    struct { uint64_t addr; uint32_t type; uint32_t reserved; } bp[16];
};
"""

# Control bits (arch half of kvm_guest_debug.control); ppc has no INJECT_* / BLOCKIRQ.
KVM_GUESTDBG_USE_SW_BP = 0x00010000
KVM_GUESTDBG_USE_HW_BP = 0x00020000

# bp[].type and exit status
KVMPPC_DEBUG_NONE = 0x0
KVMPPC_DEBUG_BREAKPOINT = 1 << 1
KVMPPC_DEBUG_WATCH_WRITE = 1 << 2
KVMPPC_DEBUG_WATCH_READ = 1 << 3

# ONE_REG ids (KVM_REG_PPC | size | index)
KVM_REG_PPC_IAC1 = 0x1030000000000002
KVM_REG_PPC_IAC2 = 0x1030000000000003
KVM_REG_PPC_IAC3 = 0x1030000000000004
KVM_REG_PPC_IAC4 = 0x1030000000000005
KVM_REG_PPC_DAC1 = 0x1030000000000006
KVM_REG_PPC_DAC2 = 0x1030000000000007
KVM_REG_PPC_EPCR = 0x1020000000000085
KVM_REG_PPC_DEBUG_INST = 0x102000000000008B
KVM_REG_PPC_DBSR = 0x10200000000000BB

# Floating point and AltiVec (PPC | size | index). BookE answers FPR/FPSCR through the core's ops
# and VR0-31/VSCR in powerpc.c ``kvm_vcpu_ioctl_get_one_reg`` (-ENXIO without CPU_FTR_ALTIVEC,
# -EINVAL without CONFIG_ALTIVEC); VRSAVE in booke.c ``kvmppc_get_one_reg`` on every core
# (docs/reference/kvm-debug-abi.md §9.3).
KVM_REG_PPC_FPR0 = 0x1030000000000020
KVM_REG_PPC_FPSCR = 0x1030000000000080
KVM_REG_PPC_VR0 = 0x1040000000000040
KVM_REG_PPC_VR31 = 0x104000000000005F
KVM_REG_PPC_VSCR = 0x1020000000000081
KVM_REG_PPC_VRSAVE = 0x10200000000000B4

# kvm_sregs u.e.features / update_special
KVM_SREGS_E_BASE = 1 << 0
KVM_SREGS_E_ARCH206 = 1 << 1
KVM_SREGS_E_64 = 1 << 2
KVM_SREGS_E_SPRG8 = 1 << 3
KVM_SREGS_E_MCIVPR = 1 << 4
KVM_SREGS_E_IVOR = 1 << 5
KVM_SREGS_E_ARCH206_MMU = 1 << 6
KVM_SREGS_E_DEBUG = 1 << 7
KVM_SREGS_E_ED = 1 << 8
KVM_SREGS_E_SPE = 1 << 9
KVM_SREGS_EXP = 1 << 10
KVM_SREGS_E_PD = 1 << 11
KVM_SREGS_E_PC = 1 << 12
KVM_SREGS_E_PT = 1 << 13
KVM_SREGS_E_PM = 1 << 14
KVM_SREGS_E_UPDATE_MCSR = 1 << 0
KVM_SREGS_E_UPDATE_TSR = 1 << 1
KVM_SREGS_E_UPDATE_DEC = 1 << 2
KVM_SREGS_E_UPDATE_DBSR = 1 << 3
KVM_SREGS_E_IMPL_FSL = 1

CONSTANTS = {
    name: value
    for name, value in dict(globals()).items()
    if name.startswith(("KVM_", "KVMPPC_")) and isinstance(value, int)
}

PPC_ABI = ArchAbi(
    kvm_host_arch="powerpc",
    byteorder="big",
    encoding=ioc.POWERPC,
    cdef=CDEF,
    structs=(
        "struct kvm_regs",
        "struct kvm_sregs",
        "struct kvm_fpu",
        "struct kvm_debug_exit_arch",
        "struct kvm_guest_debug_arch",
    ),
    constants=CONSTANTS,
)

_layout: AbiLayout | None = None


def layout() -> AbiLayout:
    """The one PowerPC layout of the process (building a cffi FFI costs milliseconds)."""
    global _layout
    if _layout is None:
        _layout = AbiLayout(PPC_ABI)
        _layout.ioctls["KVM_GET_FPU"] = ioc.POWERPC.ior(0x8C, _layout.sizeof("struct kvm_fpu"))
        _layout.ioctls["KVM_SET_FPU"] = ioc.POWERPC.iow(0x8D, _layout.sizeof("struct kvm_fpu"))
        _layout.ioctl_names.update({v: k for k, v in _layout.ioctls.items()})
    return _layout
