"""The guest's TLB as KVM e500 keeps it (``e500_mmu.c``), for tlbwe/tlbre/tlbsx and KVM_TRANSLATE.

KVM shadows the guest TLB (TLB0: 512 entries, 4-way; TLB1: 64 entries, fully associative,
``KVM_E500_TLB0_SIZE``/``KVM_E500_TLB1_SIZE``) and ``kvmppc_core_vcpu_translate`` searches it.
The model keeps the same arrays so guest TLB instructions behave and KVM_TRANSLATE answers from
the guest's mappings. The engine itself translates effective = physical (Unicorn's virtual-TLB
mode): guests here run on the 1:1 boot mapping, and an access outside RAM is MMIO whether or not
the guest mapped it (on real KVM an unmapped one would be a data TLB error to the guest).

Entries are ``(mas1, mas2, mas7_3)``; TSIZE is the 2**n KiB field at MAS1 bit 7 the kernel uses
(``get_tlb_bytes``), which also reads e500v2's 4**n encoding correctly. Effective addresses and
MAS2 are ``unsigned long``s of the host kernel: 32 bits on e500mc/e500v2, 64 on e5500/e6500
(``ea_mask``), so on a 64-bit host an address above 4 GiB is compared as itself
(``kvmppc_e500_tlb_search``).
"""

from __future__ import annotations

from typing import Any

MAS0_TLBSEL_SHIFT = 28
MAS0_ESEL_SHIFT = 16
MAS1_VALID = 0x80000000
MAS1_IPROT = 0x40000000
MAS1_TS = 0x00001000
MAS6_SAS = 0x1
TLB0_ENTRIES = 512
TLB0_WAYS = 4
TLB0_SETS = TLB0_ENTRIES // TLB0_WAYS
TLB1_ENTRIES = 64
TLBnCFG_ASSOC_SHIFT = 24
TLBnCFG_N_ENTRY = 0x00000FFF
TLBnCFG_ASSOC = 0xFF000000
HOST_TLB0CFG = 0x04110200
"""The e500mc's own TLB0CFG: 4-way, 512 entries, MINSIZE = MAXSIZE = 4 KiB (QEMU's e500mc model,
``register_tlbncfg(4, 1, 1, 0, 512)`` in target/ppc/cpu_init.c)."""
HOST_TLB1CFG = 0x401CC040
"""The e500mc's own TLB1CFG: fully associative, 64 entries, MINSIZE 4 KiB, MAXSIZE 4 GiB,
TLBnCFG_AVAIL | TLBnCFG_IPROT (``register_tlbncfg(64, 1, 12, AVAIL | IPROT, 64)``)."""


def _guest_tlbcfg(host: int, entries: int, ways: int) -> int:
    """``vcpu_mmu_init``: the host's TLBnCFG with KVM's own geometry in N_ENTRY and ASSOC."""
    return (host & ~(TLBnCFG_N_ENTRY | TLBnCFG_ASSOC)) | entries | ways << TLBnCFG_ASSOC_SHIFT


TLB0CFG = _guest_tlbcfg(HOST_TLB0CFG, TLB0_ENTRIES, TLB0_WAYS)
TLB1CFG = _guest_tlbcfg(HOST_TLB1CFG, TLB1_ENTRIES, TLB1_ENTRIES)
E6500_TLB0CFG = 0x08052400
"""e6500's own TLB0CFG (QEMU's e6500 model, target/ppc/cpu_init.c): 8-way, 1024 entries, with
TLBnCFG_PT (hardware tablewalk). e5500's are e500mc's (the same ``register_tlbncfg`` calls)."""
E6500_TLB1CFG = 0x40028040
"""e6500's own TLB1CFG: fully associative, 64 entries, TLBnCFG_IPROT and TLBnCFG_IND."""
TLBnCFG_PT = 0x00040000
TLBnCFG_IND = 0x00020000
TLBCFG = {
    "e500mc": (TLB0CFG, TLB1CFG),
    "e500v2": (TLB0CFG, TLB1CFG),  # not checked against a reference
    "e5500": (TLB0CFG, TLB1CFG),
    "e6500": (
        _guest_tlbcfg(E6500_TLB0CFG, TLB0_ENTRIES, TLB0_WAYS) & ~TLBnCFG_PT,
        _guest_tlbcfg(E6500_TLB1CFG, TLB1_ENTRIES, TLB1_ENTRIES) & ~TLBnCFG_IND,
    ),
}
"""The guest's (TLB0CFG, TLB1CFG) per host core: ``vcpu_mmu_init`` starts from the host's own
registers, puts KVM's geometry in (the same guest TLBs on every core), and on an MMU v2 core
(e6500) clears TLBnCFG_PT and TLBnCFG_IND ("Guest mmu emulation currently doesn't handle
E.PT"). e6500 was given e500mc's values until the e6500 fidelity differential read them."""
MMUCFG = 0x00C01981
"""e500mc-like: RASIZE 36, PIDSIZE 8 (an exact host value is not needed by the model)."""

Entry = tuple[int, int, int]
_EMPTY: Entry = (0, 0, 0)


def _bytes(mas1: int) -> int:
    return 1024 << ((mas1 >> 7) & 0x1F)


def _match(e: Entry, ea: int, pid: int | None, as_: int | None, ea_mask: int) -> bool:
    mas1, mas2, _ = e
    if not mas1 & MAS1_VALID:
        return False
    if as_ is not None and bool(mas1 & MAS1_TS) != bool(as_):
        return False
    tid = (mas1 >> 16) & 0xFF
    if pid is not None and tid not in (0, pid):
        return False
    mask = ~(_bytes(mas1) - 1) & ea_mask
    return (ea & mask) == (mas2 & mask)


class GuestTlb:
    def __init__(self, ea_mask: int = 0xFFFFFFFF) -> None:
        self.ea_mask = ea_mask
        """The host's ``unsigned long`` (set by the vCPU state for 64-bit cores)."""
        self.tlb0: dict[int, Entry] = {}
        """index = set * TLB0_WAYS + way."""
        self.tlb1: list[Entry] = [_EMPTY] * TLB1_ENTRIES
        self.nv0 = 0
        """``gtlb_nv[0]``: TLB0's next victim way (TLB1's, ``gtlb_nv[1]``, is always 0)."""

    def nv(self, tlbsel: int) -> int:
        return self.nv0 if tlbsel == 0 else 0

    def next_victim(self) -> int:
        """``gtlb0_get_next_victim``: this way, then round-robin over TLB0's ways."""
        victim = self.nv0
        self.nv0 = (self.nv0 + 1) % TLB0_WAYS
        return victim

    def set_tlb1(self, esel: int, mas1: int, mas2: int, mas7_3: int) -> None:
        self.tlb1[esel] = (mas1, mas2, mas7_3)

    def _tlb0_index(self, esel: int, mas2: int) -> int:
        return ((mas2 >> 12) % TLB0_SETS) * TLB0_WAYS + (esel % TLB0_WAYS)

    def write(self, mas0: int, mas1: int, mas2: int, mas7_3: int) -> None:
        """tlbwe (``kvmppc_e500_emul_tlbwe``)."""
        tlbsel = (mas0 >> MAS0_TLBSEL_SHIFT) & 1
        esel = (mas0 >> MAS0_ESEL_SHIFT) & 0xFFF
        entry = (mas1 & 0xFFFFFFFF, mas2 & self.ea_mask, mas7_3)
        if tlbsel:
            self.tlb1[esel % TLB1_ENTRIES] = entry
        else:
            self.tlb0[self._tlb0_index(esel, mas2)] = entry

    def read(self, mas0: int, mas2: int) -> Entry:
        """tlbre: the entry MAS0 (and, for TLB0, MAS2's set) selects."""
        tlbsel = (mas0 >> MAS0_TLBSEL_SHIFT) & 1
        esel = (mas0 >> MAS0_ESEL_SHIFT) & 0xFFF
        if tlbsel:
            return self.tlb1[esel % TLB1_ENTRIES]
        return self.tlb0.get(self._tlb0_index(esel, mas2), _EMPTY)

    def search(self, ea: int, pid: int | None, as_: int | None) -> tuple[int, int, Entry] | None:
        """(tlbsel, esel, entry) of the first match, TLB0 first (``kvmppc_e500_tlb_search``)."""
        for idx, e in sorted(self.tlb0.items()):
            if _match(e, ea, pid, as_, self.ea_mask):
                return 0, idx % TLB0_WAYS, e
        for esel, e in enumerate(self.tlb1):
            if _match(e, ea, pid, as_, self.ea_mask):
                return 1, esel, e
        return None

    def translate(self, ea: int, pid: int = 0, as_: int = 0) -> int | None:
        """``kvmppc_core_vcpu_translate``: the guest-physical address, None when unmapped."""
        hit = self.search(ea, pid, as_)
        if hit is None:
            return None
        mas1, _, mas7_3 = hit[2]
        size = _bytes(mas1)
        return ((mas7_3 & ~0xFFF) & ~(size - 1)) | (ea & (size - 1))

    def invalidate(self, tlbsel: int, ea: int | None, pid: int | None = None) -> None:
        """tlbivax/tlbilx: entries of ``tlbsel`` matching ``ea`` (all when None) and ``pid``,
        except IPROT-protected TLB1 entries."""

        def keep(e: Entry) -> bool:
            if not e[0] & MAS1_VALID or e[0] & MAS1_IPROT:
                return True
            if pid is not None and ((e[0] >> 16) & 0xFF) != pid:
                return True
            return ea is not None and not _match(e, ea, None, None, self.ea_mask)

        if tlbsel:
            self.tlb1 = [e if keep(e) else _EMPTY for e in self.tlb1]
        else:
            self.tlb0 = {k: e for k, e in self.tlb0.items() if keep(e)}

    def to_dict(self) -> dict[str, Any]:
        return {"tlb0": {str(k): list(v) for k, v in self.tlb0.items()},
                "tlb1": [list(e) for e in self.tlb1], "nv0": self.nv0}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GuestTlb:
        t = cls()
        t.tlb0 = {int(k): (v[0], v[1], v[2]) for k, v in d["tlb0"].items()}
        t.tlb1 = [(e[0], e[1], e[2]) for e in d["tlb1"]]
        t.nv0 = int(d.get("nv0", 0))
        return t
