"""Saving a session's debug state into a versioned JSON document, and restoring it elsewhere.

A VMM migrates guest RAM and registers; the debugger's own state lives in guestdbg and must
travel too, or the destination inherits trap words nobody can explain. The document holds: the
points with their reference counts, each trap word's guest-physical address and the original
word it replaced; each vCPU's pending reinjection; the ownership policy and the guest's own
debug settings saved at attach.

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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import GuestDebugError, MigrationError
from ..events import Reinject
from ..numbering import ExceptionId
from ..points import DebugPoint, PointKind, PointTable
from ..vcpu import VmHandle

if TYPE_CHECKING:
    from .session import Session

FORMAT = "guestdbg/debug-state"
VERSION = 1


def save(s: Session) -> dict[str, Any]:
    """The session's debug state; the VM must be stopped (a running vCPU's state is moving)."""
    s._require_stopped()
    points: list[dict[str, Any]] = []
    for e in s.points.sw.values():
        points.append(_point_doc(e.point, e.refs, e.gpa, e.original, e.inserted))
    for h in s.points.hw_breaks.values():
        t = h.trap
        if t is not None:
            points.append(_point_doc(h.point, h.refs, t.gpa, t.original, t.inserted))
        else:
            points.append(_point_doc(h.point, h.refs))
    for w in s.points.watches.values():
        points.append(_point_doc(w.point, w.refs))
    vcpus = []
    for r, saved in zip(s.runners, s.saved_guest, strict=True):
        pending = None
        if r.pending is not None:
            pending = {
                "exception": r.pending.exception.to_json(),
                "pc": r.pending.pc,
                "payload": dict(r.pending.payload),
            }
        vcpus.append({"index": r.index, "pending": pending, "saved_guest": dict(saved)})
    return {
        "format": FORMAT,
        "version": VERSION,
        "arch": s.arch.name,
        "core": s.core.name,
        "policy": s.policy,
        "attached": s.attached,
        "catch_guest_events": s.catch_guest_events,
        "points": points,
        "vcpus": vcpus,
    }


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


def restore(
    vm: VmHandle, doc: object, *, registry: object | None = None, **session_options: Any
) -> Session:
    """A new session on ``vm`` carrying the document's debug state (validated first)."""
    from .session import Session

    if not isinstance(doc, Mapping):
        raise MigrationError("a debug-state document is a JSON object")
    if doc.get("format") != FORMAT:
        raise MigrationError(f"not a guestdbg debug-state document (format {doc.get('format')!r})")
    version = doc.get("version")
    if version != VERSION:
        raise MigrationError(
            f"debug-state version {version!r} is not supported (this guestdbg reads {VERSION})"
        )
    arch = _need(doc, "arch", str, "document")
    core = _need(doc, "core", str, "document")
    policy = _need(doc, "policy", str, "document")
    attached = _need(doc, "attached", bool, "document")
    catch = _need(doc, "catch_guest_events", bool, "document")
    point_docs = _need(doc, "points", list, "document")
    vcpu_docs = _need(doc, "vcpus", list, "document")
    try:
        s = Session(
            vm, arch, core, policy=policy, registry=registry, attach=False, **session_options
        )
    except GuestDebugError as e:
        raise MigrationError(f"cannot rebuild the session: {e}") from e
    try:
        plan = _plan(s, point_docs, vcpu_docs, vm)
    except MigrationError:
        s.close()
        raise
    points, pendings, saved = plan
    s.points = points
    for f in s.filters:
        f.points = points
    for r, pending in zip(s.runners, pendings, strict=True):
        r.pending = pending
    s.saved_guest = saved
    s.attached = attached
    s.catch_guest_events = catch
    return s


def _plan(
    s: Session, point_docs: list[Any], vcpu_docs: list[Any], vm: VmHandle
) -> tuple[PointTable, list[Reinject | None], list[Mapping[str, int]]]:
    table = PointTable(s.caps)
    insn = s.trap_writer.insn
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
        if refs < 1:
            raise MigrationError(f"{where}: refs must be at least 1")
        try:
            for _ in range(refs):
                table.insert(point)
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
    if len(vcpu_docs) != len(s.runners):
        raise MigrationError(
            f"the document has {len(vcpu_docs)} vCPUs, the VM has {len(s.runners)}"
        )
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
        if exc.space not in s.arch.numbering.spaces:
            raise MigrationError(f"{where}.pending: numberspace {exc.space!r} is not this arch's")
        payload = _need(pd, "payload", Mapping, f"{where}.pending")
        if not all(isinstance(k, str) and type(v) is int for k, v in payload.items()):
            raise MigrationError(f"{where}.pending.payload: names must map to integers")
        pendings.append(Reinject(exc, _need(pd, "pc", int, f"{where}.pending"), dict(payload)))
    return table, pendings, saved


_TRAP_KINDS = frozenset({PointKind.SW_BREAK, PointKind.HW_BREAK})
