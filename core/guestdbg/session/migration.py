"""Saving a session's debug state into a versioned JSON document, and restoring it elsewhere.

A VMM migrates guest RAM and registers; the debugger's own state lives in guestdbg and must
travel too, or the destination inherits trap words nobody can explain. The document holds: the
points with their reference counts, each trap word's guest-physical address and the original
word it replaced; each vCPU's pending reinjection; the ownership policy and the guest's own
debug settings saved at attach; the addresses whose software breakpoints the user put in
hardware slots and the policy for rewritten trap words (:mod:`.hw_optin`, :mod:`.rewrites`).

Versions: a document is version 1 unless it carries opted-in addresses or a policy other than
the default; then it is version 2, so a guestdbg that reads only version 1 refuses it rather
than restoring breakpoints GDB could not remove (its ``z0`` would find a trap word where the
document has a hardware compare). This guestdbg reads both.

Pending reinjections and migration: the filter's verdict is recorded as plain data the moment
an exit is judged the guest's and delivered just before that vCPU's next KVM_RUN. If the VM is
saved in between, the document carries it and the destination delivers it before its first
KVM_RUN; if the VM is saved after delivery, the registers already hold the interrupt's effect and
the document carries nothing. Either way the guest's handler runs exactly once.

Restoring validates the whole document against the destination VM first (format and version,
every field's type, the arch, the vCPU count, each point against the capabilities, each trap
word present in the migrated memory) and raises :class:`MigrationError` before changing anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..arch import ArchInfo, CoreInfo
from ..errors import GuestDebugError, MigrationError
from ..events import Reinject
from ..numbering import ExceptionId
from ..points import DebugPoint, PointKind, PointTable
from ..vcpu import VmHandle
from . import hw_optin
from .debug_state import DebugState
from .port import VcpuPort
from .rewrites import POLICIES

__all__ = ["FORMAT", "VERSION", "VERSIONS", "Document", "MigrationError", "apply", "read", "save"]

FORMAT = "guestdbg/debug-state"
VERSION = 2
"""The newest version written (only when the document needs it: see above)."""
VERSIONS = (1, 2)
MAX_REFS = 2**31
"""References to one point a document may claim (GDB inserts a location once per breakpoint
that names it; a count beyond this is not a debugger's)."""


def save(
    state: DebugState, arch: ArchInfo, core: CoreInfo, ports: Sequence[VcpuPort]
) -> dict[str, Any]:
    """The debug state of a stopped VM (a running vCPU's state is moving)."""
    points: list[dict[str, Any]] = []
    for e in state.points.sw.values():
        points.append(_point_doc(e.point, e.refs, e.gpa, e.original, e.inserted))
    for h in state.points.hw_breaks.values():
        t = h.trap
        if t is not None:
            points.append(_point_doc(h.point, h.refs, t.gpa, t.original, t.inserted))
        else:
            points.append(_point_doc(h.point, h.refs))
    for w in state.points.watches.values():
        points.append(_point_doc(w.point, w.refs))
    vcpus = []
    for p, saved in zip(ports, state.saved_guest, strict=True):
        pending = None
        if p.pending is not None:
            pending = {
                "exception": p.pending.exception.to_json(),
                "pc": p.pending.pc,
                "payload": dict(p.pending.payload),
            }
        vcpus.append({"index": p.index, "pending": pending, "saved_guest": dict(saved)})
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "arch": arch.name,
        "core": core.name,
        "policy": state.policy,
        "attached": state.attached,
        "catch_guest_events": state.catch_guest_events,
        "points": points,
        "vcpus": vcpus,
    }
    if state.hw_served or state.rewrite_policy != POLICIES[0]:
        doc["version"] = 2
        doc["hw_served"] = [{"space": sp, "addr": a} for sp, a in sorted(state.hw_served)]
        doc["rewrite_policy"] = state.rewrite_policy
    return doc


def _point_doc(
    p: DebugPoint,
    refs: int,
    gpa: int | None = None,
    original: bytes | None = None,
    inserted: bool = False,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": p.kind.value,
        "addr": p.addr,
        "length": p.length,
        "space": p.space,
        "refs": refs,
    }
    if gpa is not None and original is not None and inserted:
        doc["trap"] = {"gpa": gpa, "original": original.hex()}
    return doc


def _need(doc: Mapping[str, Any], key: str, typ: type, where: str) -> Any:
    if key not in doc:
        raise MigrationError(f"{where}: missing field {key!r}")
    value = doc[key]
    if typ is int and (type(value) is not int):
        raise MigrationError(f"{where}.{key}: expected an integer, got {value!r}")
    if typ is not int and not isinstance(value, typ):
        raise MigrationError(f"{where}.{key}: expected {typ.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Document:
    """A document's top level, checked for format, version and field types."""

    arch: str
    core: str
    policy: str
    attached: bool
    catch_guest_events: bool
    points: list[Any]
    vcpus: list[Any]
    hw_served: list[Any]
    rewrite_policy: str


def read(doc: object) -> Document:
    """Check a document's format, version and top-level fields (MigrationError if not)."""
    if not isinstance(doc, Mapping):
        raise MigrationError("a debug-state document is a JSON object")
    if doc.get("format") != FORMAT:
        raise MigrationError(f"not a guestdbg debug-state document (format {doc.get('format')!r})")
    version = doc.get("version")
    if version not in VERSIONS or type(version) is not int:
        raise MigrationError(
            f"debug-state version {version!r} is not supported (this guestdbg reads "
            f"{', '.join(map(str, VERSIONS))})"
        )
    newer: dict[str, Any] = {"hw_served": [], "rewrite_policy": POLICIES[0]}
    if version >= 2:
        newer["hw_served"] = _need(doc, "hw_served", list, "document")
        newer["rewrite_policy"] = _need(doc, "rewrite_policy", str, "document")
    return Document(
        arch=_need(doc, "arch", str, "document"),
        core=_need(doc, "core", str, "document"),
        policy=_need(doc, "policy", str, "document"),
        attached=_need(doc, "attached", bool, "document"),
        catch_guest_events=_need(doc, "catch_guest_events", bool, "document"),
        points=_need(doc, "points", list, "document"),
        vcpus=_need(doc, "vcpus", list, "document"),
        **newer,
    )


def apply(
    doc: Document, state: DebugState, ports: Sequence[VcpuPort], arch: ArchInfo, vm: VmHandle
) -> None:
    """Give a new session's state what the document holds, after validating all of it against
    the destination VM; MigrationError before anything changes."""
    points, pendings, saved = _plan(state, len(ports), arch, doc.points, doc.vcpus, vm)
    served = _hw_served(state, doc)
    state.points.adopt(points)
    state.hw_served = served
    state.rewrite_policy = doc.rewrite_policy
    for p, pending in zip(ports, pendings, strict=True):
        p.pending = pending
    state.saved_guest[:] = saved
    state.attached = doc.attached
    state.catch_guest_events = doc.catch_guest_events


def _hw_served(state: DebugState, doc: Document) -> set[tuple[str, int]]:
    if doc.rewrite_policy not in POLICIES:
        raise MigrationError(
            f"document.rewrite_policy: {doc.rewrite_policy!r} is not one of {POLICIES}"
        )
    served: set[tuple[str, int]] = set()
    for n, item in enumerate(doc.hw_served):
        where = f"hw_served[{n}]"
        if not isinstance(item, Mapping):
            raise MigrationError(f"{where}: expected an object")
        addr = _need(item, "addr", int, where)
        if addr < 0:
            raise MigrationError(f"{where}.addr: negative")
        served.add((_need(item, "space", str, where), addr))
    if served:
        why = hw_optin.why_not_possible(state)
        if why is not None:
            raise MigrationError(f"hw_served: {why}")
        if len(served) > state.caps.hw_breakpoints:
            raise MigrationError(
                f"hw_served: {len(served)} addresses, the destination has "
                f"{state.caps.hw_breakpoints} hardware breakpoint slots"
            )
    return served


def _plan(
    state: DebugState,
    vcpus: int,
    arch: ArchInfo,
    point_docs: list[Any],
    vcpu_docs: list[Any],
    vm: VmHandle,
) -> tuple[PointTable, list[Reinject | None], list[Mapping[str, int]]]:
    table = PointTable(state.caps)
    insn = state.trap_writer.insn
    for n, pd in enumerate(point_docs):
        where = f"points[{n}]"
        if not isinstance(pd, Mapping):
            raise MigrationError(f"{where}: expected an object")
        try:
            kind = PointKind(_need(pd, "kind", str, where))
        except ValueError as e:
            raise MigrationError(f"{where}: unknown point kind {pd.get('kind')!r}") from e
        point = DebugPoint(
            kind,
            _need(pd, "addr", int, where),
            _need(pd, "length", int, where),
            _need(pd, "space", str, where),
        )
        refs = _need(pd, "refs", int, where)
        if not 1 <= refs <= MAX_REFS:
            raise MigrationError(f"{where}: refs must be between 1 and {MAX_REFS}")
        try:
            table.insert(point, refs)
        except GuestDebugError as e:
            raise MigrationError(f"{where}: {e}") from e
        trap = pd.get("trap")
        entry = table.trap_at(point.space, point.addr) if kind in _TRAP_KINDS else None
        if entry is None:
            if trap is not None:
                raise MigrationError(f"{where}: a {kind.value} point has no trap word")
            continue
        if trap is None:
            continue
        if not isinstance(trap, Mapping):
            raise MigrationError(f"{where}.trap: expected an object")
        gpa = _need(trap, "gpa", int, f"{where}.trap")
        try:
            original = bytes.fromhex(_need(trap, "original", str, f"{where}.trap"))
        except ValueError as e:
            raise MigrationError(f"{where}.trap.original: not hex") from e
        if len(original) != len(insn):
            raise MigrationError(f"{where}.trap.original: {len(original)} bytes, not {len(insn)}")
        try:
            current = vm.read_phys(gpa, len(insn))
        except GuestDebugError as e:
            raise MigrationError(f"{where}.trap: {e}") from e
        if current != insn:
            raise MigrationError(
                f"{where}: guest memory at {gpa:#x} holds {current.hex()}, not the breakpoint "
                "word; the memory and the document are from different moments"
            )
        entry.original, entry.gpa, entry.inserted = original, gpa, True
    if len(vcpu_docs) != vcpus:
        raise MigrationError(f"the document has {len(vcpu_docs)} vCPUs, the VM has {vcpus}")
    pendings: list[Reinject | None] = []
    saved: list[Mapping[str, int]] = []
    for n, vd in enumerate(vcpu_docs):
        where = f"vcpus[{n}]"
        if not isinstance(vd, Mapping):
            raise MigrationError(f"{where}: expected an object")
        if _need(vd, "index", int, where) != n:
            raise MigrationError(f"{where}: index {vd.get('index')!r} out of order")
        guest = _need(vd, "saved_guest", Mapping, where)
        if not all(isinstance(k, str) and type(v) is int for k, v in guest.items()):
            raise MigrationError(f"{where}.saved_guest: names must map to integers")
        saved.append(dict(guest))
        pd = vd.get("pending")
        if pd is None:
            pendings.append(None)
            continue
        if not isinstance(pd, Mapping):
            raise MigrationError(f"{where}.pending: expected an object or null")
        try:
            exc = ExceptionId.from_json(_need(pd, "exception", Mapping, f"{where}.pending"))
        except GuestDebugError as e:
            raise MigrationError(f"{where}.pending.exception: {e}") from e
        if exc.space not in arch.numbering.spaces:
            raise MigrationError(f"{where}.pending: numberspace {exc.space!r} is not this arch's")
        payload = _need(pd, "payload", Mapping, f"{where}.pending")
        if not all(isinstance(k, str) and type(v) is int for k, v in payload.items()):
            raise MigrationError(f"{where}.pending.payload: names must map to integers")
        pendings.append(Reinject(exc, _need(pd, "pc", int, f"{where}.pending"), dict(payload)))
    return table, pendings, saved


_TRAP_KINDS = frozenset({PointKind.SW_BREAK, PointKind.HW_BREAK})
