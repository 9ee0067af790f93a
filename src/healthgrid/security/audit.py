"""The audit trail: who did what to whose record, when, from where, why, and the outcome.

Service functions call ``record()``; the rows are written when the transaction commits (a
``before_commit`` hook), so an action that rolls back leaves no "success" behind. A refused
action is recorded by ``record_denied()`` in a transaction of its own, after the refused one
has rolled back.

Two seals, so that auditing costs a transaction one insert and no lock:
- each row carries ``mac``, an HMAC of its content, written with it (a changed row is
  detected from the start);
- ``seal()`` then links rows into one chain (``seq``, ``prev_hash``, ``hash``) under a lock
  on the head row: in a server, its background sealer (sealer.py) does it, woken by each
  audited commit, many rows per transaction; elsewhere right after the commit; and
  ``healthgrid worker`` and ``audit verify`` chain any leftovers.
``verify()`` checks both. Only a row deleted before it was chained (normally well under a
second) escapes detection.

Sources: GB/T 22239-2019 安全审计 (date-time, user, event type, outcome; protected from
deletion and modification); 网络安全法 Art. 21 (logs kept ≥ 6 months);
../shared/specs/domain-rules.md §10.4 (audit events).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, event, func, select
from sqlalchemy.orm import Session

from ..db import after_commit, after_rollback, in_transaction, transaction, utcnow
from ..errors import Invalid
from .domain import AUDIT_FIELDS, Actor, AuditAction, audit_mac, chain_hash
from .models import AuditEvent, AuditHead, GlassReview
from .pii import keyring
from .sealer import SEALER_KEY

log = logging.getLogger("healthgrid.audit")
_PENDING = "healthgrid_audit_pending"


def _entry(actor: Actor, action: AuditAction, *, resource_type: str, resource_id: Any = None,
           org_id: int | None = None, patient_id: int | None = None, person_key: str | None = None,
           outcome: str = "success", reason: str | None = None, detail: dict[str, Any] | None = None,
           break_glass: bool = False) -> dict[str, Any]:
    return {
        "at": utcnow(), "user_id": actor.user_id, "username": actor.username[:80],
        "roles": " ".join(sorted(actor.roles)) or ("system" if actor.system else ""),
        "surface": actor.surface, "client": actor.client, "purpose": actor.effective_purpose,
        "action": str(action), "resource_type": resource_type,
        "resource_id": None if resource_id is None else str(resource_id),
        "org_id": org_id, "patient_id": patient_id, "person_key": person_key,
        "outcome": outcome, "reason": reason,
        "break_glass": actor.break_glass[:500] if break_glass and actor.break_glass else None,
        "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else None,
    }


def record(session: Session, actor: Actor, action: AuditAction, **kw: Any) -> None:
    """Record an action that succeeds if (and when) the current transaction commits."""
    entry = _entry(actor, action, **kw)
    if in_transaction(session):
        session.info.setdefault(_PENDING, []).append(entry)
    else:
        with transaction(session):
            append(session, [entry])


def record_denied(session: Session, actor: Actor, action: AuditAction, *, reason: str, **kw: Any) -> None:
    """Record a refused or failed action; it survives the rollback of the refused one."""
    entry = _entry(actor, action, outcome=kw.pop("outcome", "denied"), reason=reason, **kw)
    if in_transaction(session):
        after_rollback(session, lambda s: append(s, [entry]))
    else:
        with transaction(session):
            append(session, [entry])


@event.listens_for(Session, "before_commit")
def _flush_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        append(session, pending)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def append(session: Session, entries: list[dict[str, Any]]) -> None:
    """Write rows with their content seal; chain them once this transaction commits.
    Core statements on the session's connection: the ORM's bulk paths cost several times
    the SQL itself here (bench/audit_append.py)."""
    key = keyring(session).chain_key
    session.connection().execute(_INSERT, [{**e, "mac": audit_mac(key, e)} for e in entries])
    after_commit(session, _chain_soon)


def _chain_soon(session: Session) -> None:
    """After an audited commit: wake the server's sealer, or (no sealer: tests, the CLI)
    chain now. The action has committed; a failure to chain must not fail it — the rows
    keep their content seal and the next seal chains them."""
    sealer = session.info.get(SEALER_KEY)
    if sealer is not None and sealer.running:
        sealer.notify()
        return
    try:
        seal(session, wait=False)
    except Exception:  # noqa: BLE001 - logged, retried by the next seal
        log.exception("sealing the audit chain failed; the next seal retries")


def seal(session: Session, *, wait: bool = True, batch: int = 5000) -> int:
    """Chain the rows not chained yet, oldest first. ``wait=False``: give up at once when
    another sealer holds the head (PostgreSQL ``SKIP LOCKED``). Returns rows chained."""
    key = keyring(session).chain_key
    total = 0
    while True:
        with transaction(session):
            conn = session.connection()
            if conn.dialect.name == "sqlite":
                # Taking the write lock first: SQLite serialises writers anyway.
                conn.execute(_TOUCH_HEAD)
                head = conn.execute(_READ_HEAD).first()
            else:
                head = conn.execute(_READ_HEAD.with_for_update(skip_locked=not wait)).first()
            if head is None:
                if conn.dialect.name == "sqlite" or wait:
                    raise RuntimeError("the audit chain head (sec_audit_head id 1) is missing;"
                                       " run healthgrid db upgrade")
                return total
            rows = conn.execute(select(AuditEvent.id, AuditEvent.mac).where(AuditEvent.seq.is_(None))
                                .order_by(AuditEvent.id).limit(batch)).all()
            if not rows:
                return total
            seq, prev = head.last_seq, head.last_hash
            links = []
            for row_id, mac in rows:
                seq += 1
                digest = chain_hash(key, prev, seq, mac)
                links.append({"row_id": row_id, "seq": seq, "prev_hash": prev, "hash": digest})
                prev = digest
            conn.execute(_LINK, links)
            conn.execute(_MOVE_HEAD, {"seq": seq, "h": prev})
            total += len(rows)
        if len(rows) < batch:
            return total


_HEAD = AuditHead.__table__
_EVENTS = AuditEvent.__table__
_INSERT = _EVENTS.insert()
_READ_HEAD = select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1)
_TOUCH_HEAD = _HEAD.update().where(_HEAD.c.id == 1).values(last_seq=_HEAD.c.last_seq)
_LINK = (_EVENTS.update().where(_EVENTS.c.id == bindparam("row_id"))
         .values(seq=bindparam("seq"), prev_hash=bindparam("prev_hash"), hash=bindparam("hash")))
_MOVE_HEAD = _HEAD.update().where(_HEAD.c.id == 1).values(last_seq=bindparam("seq"), last_hash=bindparam("h"))


@dataclass
class VerifyReport:
    checked: int
    ok: bool
    problems: list[str]
    last_seq: int
    unsealed: int = 0


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Check every row's content seal, then walk the chain from its anchor: a changed row
    fails its seal, a deleted row leaves a gap in ``seq`` or breaks the next link, a cut-off
    tail no longer reaches the head. Rows not chained yet are counted, not failed."""
    head = session.get(AuditHead, 1)
    if head is None:
        return VerifyReport(0, False, ["the chain head is missing"], 0)
    key = keyring(session).chain_key
    problems: list[str] = []
    expected_seq, prev, checked = head.anchor_seq + 1, head.anchor_hash, 0
    last_seq, unsealed, last_id = head.anchor_seq, 0, 0
    while len(problems) <= 50:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.id > last_id)
                               .order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            break
        for ev in rows:
            if audit_mac(key, {f: getattr(ev, f) for f in AUDIT_FIELDS}) != ev.mac:
                problems.append(f"row {ev.seq or f'id {ev.id}'}: its content was changed")
            unsealed += ev.seq is None
            checked += 1
        last_id = rows[-1].id
        session.expunge_all()
    while len(problems) <= 50:
        rows = session.execute(select(AuditEvent.seq, AuditEvent.mac, AuditEvent.prev_hash, AuditEvent.hash)
                               .where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq)
                               .limit(batch)).all()
        if not rows:
            break
        for seq, mac, prev_hash, digest in rows:
            if seq != expected_seq:
                problems.append(f"rows {expected_seq}–{seq - 1} are missing (deleted)")
            if prev_hash != prev or chain_hash(key, prev_hash or "", seq, mac) != digest:
                problems.append(f"row {seq}: does not follow the row before it")
            prev, expected_seq, last_seq = digest, seq + 1, seq
    if len(problems) > 50:
        problems.append("… stopped after 50 problems")
    elif last_seq != head.last_seq or prev != head.last_hash:
        problems.append(f"the chain ends at row {last_seq} but its head says {head.last_seq}"
                        " (rows at the end were deleted or the head was changed)")
    return VerifyReport(checked, not problems, problems, last_seq, unsealed)


def purge_expired(session: Session, actor: Actor, *, retention_days: int) -> int:
    """Delete rows older than the retention period from the start of the chain, move the
    anchor to the last deleted row, and record the purge itself."""
    if retention_days < 183:
        raise Invalid("SEC-060", "audit retention is at least 183 days (网络安全法 Art. 21)")
    cutoff = utcnow() - timedelta(days=retention_days)
    with transaction(session):
        head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
        # The chain is cut only from its start, and never past a break-the-glass access
        # an auditor has not reviewed yet.
        unreviewed = session.scalar(
            select(func.min(AuditEvent.seq)).outerjoin(GlassReview, GlassReview.audit_id == AuditEvent.id)
            .where(AuditEvent.break_glass.is_not(None), GlassReview.id.is_(None)))
        old = select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.at < cutoff, AuditEvent.seq.is_not(None))
        if unreviewed is not None:
            old = old.where(AuditEvent.seq < unreviewed)
        last = session.execute(old.order_by(AuditEvent.seq.desc()).limit(1)).first()
        if last is None:
            return 0
        count = session.scalar(select(func.count()).select_from(AuditEvent)
                               .where(AuditEvent.seq <= last.seq)) or 0
        session.execute(delete(GlassReview).where(GlassReview.audit_id.in_(
            select(AuditEvent.id).where(AuditEvent.seq <= last.seq))))
        session.execute(delete(AuditEvent).where(AuditEvent.seq <= last.seq))
        head.anchor_seq, head.anchor_hash = last.seq, last.hash
        record(session, actor, AuditAction.RETENTION, resource_type="AuditEvent",
               detail={"deleted": count, "through_seq": last.seq, "cutoff": cutoff.isoformat()})
    return count

