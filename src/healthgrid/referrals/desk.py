"""What the referral desks read: one referral (viewed or printed), the inbox, outbox,
referral-centre and overdue lists, primary care's follow-up list, the receiving
department's free reserved places, and each department's intake rule. Every read is
checked and audited here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..scheduling import service as scheduling
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import queries
from .models import FollowUpTask, IntakeRule, Referral
from .queries import ReferralView
from .service import Status, _local_today, _view

# -- reading ---------------------------------------------------------------------------------------

def get_referral(session: Session, actor: Actor, referral_id: int, *, printing: bool = False) -> ReferralView:
    """Staff of either side (and of the referral centre it went to) see the referral; others
    need what reading the patient's record needs; a resident sees their own. Printing the
    paper form (转诊单) is audited as a print, not a view."""
    with transaction(session):
        row = queries.referral(session, referral_id)
        _check_read(session, actor, row, AuditAction.PRINT if printing else AuditAction.VIEW)
        return _view(session, actor, row)


def _check_read(session: Session, actor: Actor, row: Referral, action: AuditAction = AuditAction.VIEW) -> None:
    where = dict(resource_type="Referral", resource_id=row.id, patient_id=row.patient_id)
    sides = [o for o in (row.from_org_id, row.to_org_id, row.back_to_org_id, row.escalated_to_org_id) if o]
    if row.status == Status.DRAFT.value:
        # A draft is the sender's until it is sent.
        access.check(session, actor, Perm.REFERRAL_WRITE, action, org_id=row.from_org_id, **where)
        return
    for org in sides:
        if access.in_scope(session, actor, Perm.REFERRAL_WRITE, org):
            access.check(session, actor, Perm.REFERRAL_WRITE, action, org_id=org, **where)
            return
    if Perm.SELF_RECORD in actor.perms() and not actor.system and Perm.PATIENT_READ not in actor.perms():
        access.check(session, actor, Perm.SELF_RECORD, action,
                     person_key=patients.person_key_of(session, row.patient_id), **where)
        return
    access.check(session, actor, Perm.PATIENT_READ, action, org_id=row.to_org_id, **where)


@dataclass
class ReferralQuery:
    org_id: int | None = None  # the desk: referrals this organisation sent or receives
    box: str | None = None  # in | out | centre | back (referred back to the organisation)
    patient_id: int | None = None
    status: list[str] = field(default_factory=list)
    direction: str | None = None
    urgency: str | None = None
    requester_id: int | None = None  # the referring practitioner
    performer_org_id: int | None = None  # the receiving organisation
    since: datetime | None = None  # submitted (or created) at or after
    until: datetime | None = None
    overdue: bool = False  # past the acceptance deadline, not answered


BOXES = ("in", "out", "centre", "back")


def search_referrals(session: Session, actor: Actor, q: ReferralQuery, *, offset: int = 0, limit: int = 50,
                     now: datetime | None = None) -> list[ReferralView]:
    """A desk's inbox and outbox, a patient's referrals, or any in the actor's scope."""
    now = now or utcnow()
    if q.box is not None and q.box not in BOXES:
        raise Invalid("REF-005", f"box: one of {list(BOXES)}", {"field": "box"})
    bad = [s for s in q.status if s not in {x.value for x in Status}]
    if bad:
        raise Invalid("REF-005", f"status: unknown {bad}", {"field": "status"})
    with transaction(session):
        stmt = select(Referral)
        if q.org_id is not None:
            access.check(session, actor, Perm.REFERRAL_WRITE, AuditAction.SEARCH, resource_type="Referral",
                         org_id=q.org_id, detail={"box": q.box})
            column = {"in": Referral.to_org_id, "out": Referral.from_org_id, "centre": Referral.escalated_to_org_id,
                      "back": Referral.back_to_org_id}.get(q.box or "")
            stmt = stmt.where(column == q.org_id if column is not None else
                              or_(Referral.to_org_id == q.org_id, Referral.from_org_id == q.org_id))
            if q.box != "out":  # drafts are the sender's
                stmt = stmt.where(or_(Referral.status != Status.DRAFT.value, Referral.from_org_id == q.org_id))
        elif q.patient_id is not None:
            target = patients.resolve_patient_id(session, q.patient_id)
            access.check(session, actor, Perm.PATIENT_READ, AuditAction.SEARCH, resource_type="Referral",
                         patient_id=target)
            stmt = stmt.where(Referral.patient_id == target, _not_others_draft(session, actor))
        else:
            orgs = access.scope_org_ids(session, actor, Perm.REFERRAL_WRITE)
            access.check(session, actor, Perm.REFERRAL_WRITE, AuditAction.SEARCH, resource_type="Referral",
                         detail={"scope": "all" if orgs is None else len(orgs)})
            if orgs is not None:
                stmt = stmt.where(or_(Referral.to_org_id.in_(orgs), Referral.from_org_id.in_(orgs)))
            stmt = stmt.where(_not_others_draft(session, actor))
        stmt = _filters(stmt, q, now)
        rows = list(session.scalars(stmt.order_by(Referral.id.desc()).offset(offset).limit(min(limit, 500))))
        return queries.views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))


def _not_others_draft(session: Session, actor: Actor):
    """Drafts are seen only by staff of the facility writing them."""
    mine = access.scope_org_ids(session, actor, Perm.REFERRAL_WRITE) if actor.grants_with(
        Perm.REFERRAL_WRITE) or actor.system else set()
    if mine is None:
        return true()
    return or_(Referral.status != Status.DRAFT.value, Referral.from_org_id.in_(mine))


def _filters(stmt, q: ReferralQuery, now: datetime):
    if q.patient_id is not None and q.org_id is not None:
        stmt = stmt.where(Referral.patient_id == q.patient_id)
    if q.status:
        stmt = stmt.where(Referral.status.in_(q.status))
    for column, value in ((Referral.direction, q.direction), (Referral.urgency, q.urgency),
                          (Referral.from_practitioner_id, q.requester_id), (Referral.to_org_id, q.performer_org_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    sent = func.coalesce(Referral.submitted_at, Referral.created_at)
    if q.since is not None:
        stmt = stmt.where(sent >= q.since)
    if q.until is not None:
        stmt = stmt.where(sent < q.until)
    if q.overdue:
        stmt = stmt.where(Referral.status == Status.SUBMITTED.value, Referral.accept_due_at < now)
    return stmt


@dataclass
class TaskView:
    id: int
    referral: ReferralView
    due_at: datetime
    done_at: datetime | None
    overdue: bool


def followup_tasks(session: Session, actor: Actor, *, org_id: int, open_only: bool = True,
                   overdue_only: bool = False, now: datetime | None = None, limit: int = 200) -> list[TaskView]:
    """Primary care's follow-up list (随访任务): referred-back patients, soonest due first."""
    now = now or utcnow()
    with transaction(session):
        access.check(session, actor, Perm.REFERRAL_WRITE, AuditAction.SEARCH, resource_type="ReferralTask",
                     org_id=org_id)
        stmt = select(FollowUpTask).where(FollowUpTask.org_id == org_id)
        if open_only or overdue_only:
            stmt = stmt.where(FollowUpTask.done_at.is_(None))
        if overdue_only:
            stmt = stmt.where(FollowUpTask.due_at < now)
        tasks = list(session.scalars(stmt.order_by(FollowUpTask.due_at).limit(limit)))
        rows = {r.id: r for r in session.scalars(select(Referral).where(
            Referral.id.in_([t.referral_id for t in tasks])))}
        views = {v.id: v for v in queries.views(session, list(rows.values()), unmasked=actor.can(Perm.PII_UNMASKED))}
        return [TaskView(t.id, views[t.referral_id], t.due_at, t.done_at, t.done_at is None and now > t.due_at)
                for t in tasks]


def reserved_places(session: Session, actor: Actor, *, org_id: int, department_id: int | None = None,
                    practitioner_id: int | None = None, days: int = 21, now: datetime | None = None):
    """The receiving department's free reserved places (预留号源) the referring doctor may pick:
    those whose sessions are open to referrers now (§3.6 ``reserve_lead_days``)."""
    now = now or utcnow()
    today = _local_today(session, now)
    found = scheduling.find_slots(session, actor, scheduling.SlotQuery(
        org_id=org_id, department_id=department_id, practitioner_id=practitioner_id, pool="reserved",
        day_from=today, day_to=today + timedelta(days=days), free_only=True), now=now, limit=500)
    return [s for s in found if s.referral_open_at <= now][:100]


def set_intake_rule(session: Session, actor: Actor, *, department_id: int, auto_accept_routine: bool) -> None:
    """A receiving department's intake: accept routine referrals on submission or not."""
    with transaction(session):
        ref = registry_queries.department_ref(session, department_id)
        if ref is None:
            raise Invalid("REF-005", f"department_id: no department {department_id}", {"field": "department_id"})
        access.check(session, actor, Perm.SCHEDULE_MANAGE, AuditAction.UPDATE, resource_type="ReferralIntake",
                     resource_id=department_id, org_id=ref[0])
        rule = session.get(IntakeRule, department_id)
        if rule is None:
            rule = IntakeRule(department_id=department_id, org_id=ref[0])
            session.add(rule)
        rule.auto_accept_routine, rule.updated_by, rule.updated_at = auto_accept_routine, actor.username, utcnow()
        session.flush()


def intake_rules(session: Session, org_id: int) -> dict[int, bool]:
    return dict(session.execute(select(IntakeRule.department_id, IntakeRule.auto_accept_routine)
                                .where(IntakeRule.org_id == org_id)).all())
