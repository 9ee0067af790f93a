"""Reading the audit trail: the auditor's search and review of break-the-glass accesses,
the chain check, and a resident's "who looked at my record". Use cases on top of
``access`` (which decides) and ``audit`` (which writes the chain)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import Conflict, Invalid, NotFound
from . import access
from .audit import VerifyReport, seal, verify
from .domain import Actor, AuditAction, Perm
from .models import AuditEvent, GlassReview


def verify_as(session: Session, actor: Actor) -> VerifyReport:
    """``verify`` for an auditor through the API or a page (the CLI runs it as the operator)."""
    with transaction(session):
        access.check(session, actor, Perm.AUDIT_READ, AuditAction.VIEW, resource_type="AuditChain")
    seal(session)
    return verify(session)


@dataclass
class AuditFilter:
    username: str | None = None
    patient_id: int | None = None
    person_key: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    break_glass_only: bool = False
    unreviewed_only: bool = False


@dataclass
class AuditPage:
    total: int
    items: list[AuditEvent]
    reviews: dict[int, GlassReview]


def search(session: Session, actor: Actor, f: AuditFilter, *, offset: int = 0, limit: int = 50) -> AuditPage:
    """The trail for an auditor: rows about organisations in their scope; rows tied to no
    organisation (log-ins, region-level staff) only for an auditor of the whole region."""
    with transaction(session):
        access.check(session, actor, Perm.AUDIT_READ, AuditAction.SEARCH, resource_type="AuditEvent",
                     detail={k: v for k, v in {"username": f.username, "patient_id": f.patient_id,
                                               "by_person": bool(f.person_key), "action": f.action}.items()
                             if v})
        stmt = select(AuditEvent)
        orgs = access.scope_org_ids(session, actor, Perm.AUDIT_READ)
        if orgs is not None:
            stmt = stmt.where(AuditEvent.org_id.in_(sorted(orgs or {-1})))
        if f.username:
            stmt = stmt.where(AuditEvent.username == f.username)
        if f.patient_id is not None:
            stmt = stmt.where(AuditEvent.patient_id == f.patient_id)
        if f.person_key:
            stmt = stmt.where(AuditEvent.person_key == f.person_key)
        if f.action:
            stmt = stmt.where(AuditEvent.action == f.action)
        if f.outcome:
            stmt = stmt.where(AuditEvent.outcome == f.outcome)
        if f.since:
            stmt = stmt.where(AuditEvent.at >= f.since)
        if f.until:
            stmt = stmt.where(AuditEvent.at < f.until)
        if f.break_glass_only or f.unreviewed_only:
            stmt = stmt.where(AuditEvent.break_glass.is_not(None))
        if f.unreviewed_only:
            stmt = stmt.where(~select(GlassReview.id).where(GlassReview.audit_id == AuditEvent.id).exists())
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        items = list(session.scalars(stmt.order_by(AuditEvent.id.desc()).offset(offset).limit(limit)))
        reviews = {r.audit_id: r for r in session.scalars(
            select(GlassReview).where(GlassReview.audit_id.in_([i.id for i in items])))} if items else {}
        return AuditPage(total, items, reviews)


def access_log_for_me(session: Session, actor: Actor, *, offset: int = 0, limit: int = 50) -> AuditPage:
    """"Who looked at my record": every access by someone else to the resident's data."""
    with transaction(session):
        access.check(session, actor, Perm.SELF_RECORD, AuditAction.VIEW, resource_type="AccessLog",
                     person_key=actor.person_key, audit_success=False)
        if actor.person_key is None:
            raise Invalid("SEC-061", "this account is not linked to a resident (no ID number on file)")
        stmt = select(AuditEvent).where(AuditEvent.person_key == actor.person_key,
                                        AuditEvent.user_id.is_distinct_from(actor.user_id))
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        items = list(session.scalars(stmt.order_by(AuditEvent.id.desc()).offset(offset).limit(limit)))
        return AuditPage(total, items, {})


def review_break_glass(session: Session, actor: Actor, audit_id: int, *, verdict: str,
                       note: str | None = None) -> GlassReview:
    if verdict not in ("justified", "unjustified"):
        raise Invalid("SEC-062", "verdict: 'justified' or 'unjustified'")
    with transaction(session):
        access.check(session, actor, Perm.AUDIT_REVIEW, AuditAction.BREAK_GLASS_REVIEW,
                     resource_type="AuditEvent", resource_id=audit_id, audit_success=False)
        ev = session.get(AuditEvent, audit_id)
        if ev is None or ev.break_glass is None:
            raise NotFound("SEC-063", f"no break-the-glass access with audit id {audit_id}")
        access.check(session, actor, Perm.AUDIT_REVIEW, AuditAction.BREAK_GLASS_REVIEW,
                     resource_type="AuditEvent", resource_id=audit_id,
                     **({"org_id": ev.org_id} if ev.org_id is not None else {}),
                     detail={"verdict": verdict})
        if session.scalar(select(GlassReview.id).where(GlassReview.audit_id == audit_id)):
            raise Conflict("SEC-064", f"audit row {audit_id} has already been reviewed")
        review = GlassReview(audit_id=audit_id, reviewer=actor.username, verdict=verdict,
                             note=(note or "").strip()[:500] or None)
        session.add(review)
        session.flush()
        return review
