"""The audit trail: who did what to whose record, when, from where, why, and the outcome.

Service functions call ``record()``; the rows are appended when the transaction commits
(a ``before_commit`` hook), so an action that rolls back leaves no "success" behind and the
chain head is locked only for the last moments of a transaction. A refused action is
recorded by ``record_denied()`` in a transaction of its own, after the refused one has
rolled back. Rows form an HMAC chain (domain.audit_hash); ``verify()`` walks it.

Sources: GB/T 22239-2019 安全审计 (date-time, user, event type, outcome; protected from
deletion and modification); 网络安全法 Art. 21 (logs kept ≥ 6 months);
../shared/specs/domain-rules.md §10.4 (audit events).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, event, func, insert, select, update
from sqlalchemy.orm import Session

from ..db import after_rollback, in_transaction, transaction, utcnow
from ..errors import Invalid
from .domain import GENESIS_HASH, Actor, AuditAction, audit_hash
from .models import AuditEvent, AuditHead, GlassReview
from .pii import keyring

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
    """Append to the chain. Taking the head with an UPDATE first gets the write lock on
    both databases (a row lock on PostgreSQL, the database lock on SQLite) before reading."""
    n = len(entries)
    row = session.execute(update(AuditHead).where(AuditHead.id == 1)
                          .values(last_seq=AuditHead.last_seq + n)
                          .returning(AuditHead.last_seq, AuditHead.last_hash)).first()
    if row is None:
        raise RuntimeError("the audit chain head (sec_audit_head id 1) is missing; run healthgrid"
                           " db upgrade")
    seq, prev = row[0] - n, row[1]
    key = keyring(session).chain_key
    rows = []
    for entry in entries:
        seq += 1
        full = {**entry, "seq": seq}
        digest = audit_hash(key, prev, full)
        rows.append({**full, "prev_hash": prev, "hash": digest})
        prev = digest
    session.execute(insert(AuditEvent), rows)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))


@dataclass
class VerifyReport:
    checked: int
    ok: bool
    problems: list[str]
    last_seq: int


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Walk the chain from its anchor: a changed row breaks its own hash, a deleted row
    leaves a gap in ``seq`` or breaks the next row's ``prev_hash``, a cut-off tail no
    longer reaches the head."""
    head = session.get(AuditHead, 1)
    if head is None:
        return VerifyReport(0, False, ["the chain head is missing"], 0)
    key = keyring(session).chain_key
    problems: list[str] = []
    expected_seq, prev, checked = head.anchor_seq + 1, head.anchor_hash, 0
    last_seq = head.anchor_seq
    while True:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.seq >= expected_seq)
                               .order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                problems.append(f"rows {expected_seq}–{ev.seq - 1} are missing (deleted)")
            if ev.prev_hash != prev:
                problems.append(f"row {ev.seq}: does not follow the row before it")
            record = {f: getattr(ev, f) for f in ("seq", "at", "user_id", "username", "roles",
                                                   "surface", "client", "purpose", "action",
                                                   "resource_type", "resource_id", "org_id",
                                                   "patient_id", "person_key", "outcome", "reason",
                                                   "break_glass", "detail")}
            if audit_hash(key, ev.prev_hash, record) != ev.hash:
                problems.append(f"row {ev.seq}: its content was changed")
            prev, expected_seq, last_seq = ev.hash, ev.seq + 1, ev.seq
            checked += 1
        session.expunge_all()
        if len(problems) > 50:
            problems.append("… stopped after 50 problems")
            break
    if last_seq != head.last_seq or prev != head.last_hash:
        problems.append(f"the chain ends at row {last_seq} but its head says {head.last_seq}"
                        " (rows at the end were deleted or the head was changed)")
    return VerifyReport(checked, not problems, problems, last_seq)



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
        old = select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.at < cutoff)
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


def head_hash(session: Session) -> tuple[int, str]:
    head = session.get(AuditHead, 1)
    return (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
