"""Referral use cases: send (上转/下转), accept or reject, bind a reserved place, receive the
patient, refer back (回转), follow up in primary care, close; plus the listings of each desk.

Every transition goes through ``_move``: the pure state machine decides, the row gets its
timestamp, the event log a line, the outbox an event (notifications), the audit trail an
entry. Use cases that change a referral read it ``FOR UPDATE`` first, so two doctors
accepting one referral queue on its row and the second is refused (REF-002).

The reserved place (§3.6) is booked through the scheduling service with the referral's code
as ``referral_ref``; leaving for REJECTED, CANCELLED or NO_SHOW releases it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import outbox
from ..config import ReferralSettings
from ..db import transaction, utcnow
from ..errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..scheduling import service as scheduling
from ..security import ALL_SETTINGS_KEY, access
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import criteria, queries
from . import domain as d
from .models import IntakeRule, Referral, ReferralEvent
from .queries import ReferralView

Status = d.Status


def settings_of(session: Session) -> ReferralSettings:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return settings.referrals if settings is not None else ReferralSettings()


def _sla(cfg: ReferralSettings) -> d.Sla:
    return d.Sla(cfg.urgent_accept_hours, cfg.routine_accept_hours, cfg.followup_days)


# -- input ---------------------------------------------------------------------------------------

@dataclass
class ReferralIn:
    patient_id: int
    from_org_id: int
    to_org_id: int
    diagnoses: list[dict]
    urgency: str = "routine"
    direction: str | None = None  # derived from the two organisations' levels when absent
    from_department_id: int | None = None
    from_practitioner_id: int | None = None  # the actor's own practitioner record by default
    to_department_id: int | None = None
    to_practitioner_id: int | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    present_illness: str | None = None
    past_history: str | None = None
    treatment: str | None = None
    attachments: list[dict] = field(default_factory=list)
    insurance_type: str | None = None
    insurance_region: str | None = None
    contact_phone: str | None = None
    clinical: dict = field(default_factory=dict)
    slot_id: int | None = None  # a free reserved place of the receiving department


@dataclass
class _Checked:
    direction: str
    urgency: str
    texts: dict[str, str | None]
    diagnoses: list[d.Diagnosis]
    attachments: list[dict]
    facts: criteria.Facts
    findings: list[criteria.Finding]


# -- who may act -------------------------------------------------------------------------------

def _check_side(session: Session, actor: Actor, row: Referral, org_id: int, action: AuditAction,
                detail: dict | None = None) -> None:
    access.check(session, actor, Perm.REFERRAL_WRITE, action, resource_type="Referral", resource_id=row.id,
                 org_id=org_id, patient_id=row.patient_id, detail=detail)


def _side_org(row: Referral, target: Status) -> int:
    """The organisation whose staff make this move: the receiver accepts, treats and refers
    back; the sender submits and cancels; the facility the patient went back to receives,
    follows up and closes (after a back-referral; the receiver closes otherwise)."""
    if target in (Status.RECEIVED_BY_PRIMARY, Status.FOLLOWED_UP) or (
            target is Status.CLOSED and row.status == Status.FOLLOWED_UP.value):
        return row.back_to_org_id or row.from_org_id
    if target in d.SENDER_MOVES and target is not Status.CLOSED:
        return row.from_org_id
    return row.to_org_id


def _referral_relationship(session: Session, actor: Actor, patient_id: int) -> str | None:
    """Access source: staff of a facility that sent, receives or took back a referral of the
    patient (the receiving doctor reads the record the referral brings)."""
    mine = {g.scope_id for g in actor.grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id}
    if not mine:
        return None
    dead = [s.value for s in (Status.REJECTED, Status.CANCELLED, Status.EXPIRED)]
    found = session.scalar(select(Referral.id).where(
        Referral.patient_id == patient_id,
        or_(Referral.from_org_id.in_(mine), Referral.back_to_org_id.in_(mine),
            Referral.to_org_id.in_(mine) & Referral.status.not_in(dead + [Status.DRAFT.value]))).limit(1))
    return "referral" if found is not None else None


def _referral_orgs(session: Session, patient_id: int) -> set[int]:
    rows = session.execute(select(Referral.from_org_id, Referral.to_org_id).where(Referral.patient_id == patient_id))
    return {o for pair in rows for o in pair}


def _check_booking_referral(session: Session, referral_ref: str, patient_id: int, org_id: int) -> None:
    """A reserved place (§3.6) is booked for a referral sent through the platform: one of
    this patient, to this hospital, submitted or accepted. Paper referrals (a free-text
    reference) only where the deployment allows them (``paper_referrals``)."""
    referral_id = d.parse_ref_code(referral_ref)
    if referral_id is None:
        if settings_of(session).paper_referrals:
            return
        raise Conflict("SCHED-005", f"reserved places are booked for a referral sent through the platform; "
                       f"{referral_ref!r} is not a referral number (ZZ + 8 digits)", {"field": "referral_ref"})
    row = session.get(Referral, referral_id)
    live = (Status.SUBMITTED.value, Status.ACCEPTED.value)
    if row is None or patients.resolve_patient_id(session, row.patient_id) != patient_id or row.to_org_id != org_id \
            or row.status not in live:
        raise Conflict("SCHED-005", f"referral {referral_ref} is not a submitted or accepted referral of this patient"
                       " to this hospital", {"field": "referral_ref"})


scheduling.register_referral_check(_check_booking_referral)
access.register_relationship_source(_referral_relationship)
access.register_patient_orgs_source(_referral_orgs)


# -- moving through the state machine ----------------------------------------------------------

def _move(session: Session, actor: Actor, row: Referral, target: Status, *, now: datetime,
          note: str | None = None) -> None:
    was = row.status
    d.check_transition(was, target.value)
    row.status = target.value
    setattr(row, d.STAMP[target], now)
    row.updated_at = now
    session.add(ReferralEvent(referral_id=row.id, at=now, actor=actor.username, from_status=was,
                              to_status=target.value, note=(note or None) and note[:500]))
    session.flush()
    outbox.publish(session, "referrals.status_changed", {"referral_id": row.id, "from": was, "to": target.value})


def _load(session: Session, referral_id: int, expected_version: int | None) -> Referral:
    row = queries.referral(session, referral_id, for_update=True)
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed("REF-004", f"referral {referral_id} is at version {row.version}, not"
                                 f" {expected_version}; read it again", {"version": row.version})
    return row


def _view(session: Session, actor: Actor, row: Referral, *, events: bool = True) -> ReferralView:
    return queries.views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED), with_events=events)[0]


def _change(session: Session, actor: Actor, referral_id: int, target: Status, *, expected_version: int | None,
            now: datetime | None, note: str | None = None, then=None) -> ReferralView:
    """Lock, check the actor's side and the transition, move, then run ``then(row)``; one
    transaction, retried whole if PostgreSQL picks it as a deadlock victim."""
    now = now or utcnow()

    def attempt() -> ReferralView:
        with transaction(session):
            row = _load(session, referral_id, expected_version)
            _check_side(session, actor, row, _side_org(row, target), AuditAction.UPDATE,
                        {"transition": f"{row.status}->{target.value}"})
            d.check_transition(row.status, target.value)
            _move(session, actor, row, target, now=now, note=note)
            if then is not None:
                then(row)
            return _view(session, actor, row)

    return scheduling.retrying(attempt)


# -- creating and submitting -------------------------------------------------------------------

def _validate(session: Session, data: ReferralIn) -> _Checked:
    texts = d.check_texts({k: getattr(data, k) for k in ("reason_code", "reason_text", "present_illness",
                                                         "past_history", "treatment", "insurance_type",
                                                         "insurance_region", "contact_phone")})
    if data.urgency not in {u.value for u in d.Urgency}:
        raise Invalid("REF-005", f"urgency: one of {[u.value for u in d.Urgency]}", {"field": "urgency"})
    diagnoses = d.check_diagnoses(list(data.diagnoses or []))
    attachments = d.check_attachments(list(data.attachments or []))
    facts = criteria.facts_from(data.clinical)
    orgs = {}
    for name in ("from_org_id", "to_org_id"):
        org = registry_queries.organization_or_none(session, getattr(data, name))
        if org is None or not org.active:
            raise Invalid("REF-005", f"{name}: no active organisation {getattr(data, name)}", {"field": name})
        orgs[name] = org
    if data.from_org_id == data.to_org_id:
        raise Invalid("REF-005", "to_org_id: a referral goes to another organisation", {"field": "to_org_id"})
    _check_place(session, data.from_org_id, data.from_department_id, data.from_practitioner_id, "from")
    _check_place(session, data.to_org_id, data.to_department_id, data.to_practitioner_id, "to")
    actual = d.direction_between(orgs["from_org_id"].level, orgs["to_org_id"].level)
    direction = data.direction or actual.value
    if direction not in {x.value for x in d.Direction}:
        raise Invalid("REF-005", f"direction: one of {[x.value for x in d.Direction]}", {"field": "direction"})
    route = criteria.Route(direction, data.urgency, orgs["from_org_id"].level, orgs["to_org_id"].level,
                           registry_queries.share_alliance(session, data.from_org_id, data.to_org_id))
    findings = criteria.evaluate(route, facts, settings_of(session).criteria)
    return _Checked(direction, data.urgency, texts, diagnoses, attachments, facts, findings)


def _check_place(session: Session, org_id: int, department_id: int | None, practitioner_id: int | None,
                 side: str) -> None:
    if department_id is not None:
        ref = registry_queries.department_ref(session, department_id)
        if ref is None or ref[0] != org_id:
            raise Invalid("REF-005", f"{side}_department_id: department {department_id} is not at organisation"
                          f" {org_id}", {"field": f"{side}_department_id"})
    if practitioner_id is not None and not registry_queries.practises_at(session, practitioner_id, org_id):
        raise Invalid("REF-005", f"{side}_practitioner_id: practitioner {practitioner_id} does not practise at"
                      f" organisation {org_id}", {"field": f"{side}_practitioner_id"})


def _refuse_blocking(findings: list[criteria.Finding]) -> None:
    blocks = criteria.blocking(findings)
    if blocks:
        raise Invalid("REF-006", "the referral does not meet the referral criteria: "
                      + "; ".join(f"{f.rule} {f.text[1]}" for f in blocks),
                      {"findings": [f.as_dict() for f in findings]})


def check_criteria(session: Session, actor: Actor, data: ReferralIn) -> list[criteria.Finding]:
    """The criteria hints of the form, without writing anything."""
    with transaction(session):
        access.check(session, actor, Perm.REFERRAL_WRITE, AuditAction.VIEW, resource_type="ReferralCriteria",
                     org_id=data.from_org_id, audit_success=False)
        return _validate(session, data).findings


def _digest(data: ReferralIn, submit: bool) -> str:
    return hashlib.sha256(json.dumps([data.__dict__, submit], sort_keys=True, default=str).encode()).hexdigest()


def create_referral(session: Session, actor: Actor, data: ReferralIn, *, submit: bool = True,
                    idempotency_key: str | None = None, now: datetime | None = None) -> ReferralView:
    """Write the referral-out form; submit it at once unless ``submit`` is False (a draft).
    Retried with the same Idempotency-Key, answers the first referral."""
    now = now or utcnow()
    key = scheduling.check_key(idempotency_key)
    owner = f"user:{actor.user_id}" if actor.user_id is not None else actor.username
    digest = _digest(data, submit)

    def attempt() -> ReferralView:
        with transaction(session):
            if key is not None:
                found = session.scalar(select(Referral).where(Referral.idem_owner == owner,
                                                              Referral.idempotency_key == key))
                if found is not None:
                    if found.clinical.get("_digest") != digest:
                        raise Conflict("REF-013", "this Idempotency-Key was used for another referral; use a new key",
                                       {"field": "Idempotency-Key"})
                    return replace(_view(session, actor, found), replayed=True)
            return _create(session, actor, data, submit=submit, key=key, owner=owner, digest=digest, now=now)

    try:
        return scheduling.retrying(attempt)
    except IntegrityError:
        if key is None:
            raise
        return scheduling.retrying(attempt)  # a concurrent retry inserted it first: answer it


def _create(session: Session, actor: Actor, data: ReferralIn, *, submit: bool, key: str | None, owner: str,
            digest: str, now: datetime) -> ReferralView:
    access.check(session, actor, Perm.REFERRAL_WRITE, AuditAction.CREATE, resource_type="Referral",
                 org_id=data.from_org_id, patient_id=data.patient_id, audit_success=False)
    try:
        patient_id = patients.resolve_patient_id(session, data.patient_id)
    except NotFound as exc:
        raise Invalid("REF-005", f"patient_id: patient {data.patient_id} is not in the patient index",
                      {"field": "patient_id"}) from exc
    # The referring doctor must be allowed to see the patient they refer.
    access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                 resource_id=patient_id, org_id=data.from_org_id, patient_id=patient_id, audit_success=False)
    checked = _validate(session, data)
    if data.slot_id is not None:
        _check_slot(session, actor, data.slot_id, data)
    from_practitioner = data.from_practitioner_id or actor.practitioner_id
    if from_practitioner is not None and data.from_practitioner_id is None and not registry_queries.practises_at(
            session, from_practitioner, data.from_org_id):
        from_practitioner = None
    row = Referral(direction=checked.direction, urgency=checked.urgency, status=Status.DRAFT.value,
                   patient_id=patient_id, from_org_id=data.from_org_id, from_department_id=data.from_department_id,
                   from_practitioner_id=from_practitioner, to_org_id=data.to_org_id,
                   to_department_id=data.to_department_id, to_practitioner_id=data.to_practitioner_id,
                   diagnoses=[{"code": x.code, "name": x.name} for x in checked.diagnoses],
                   attachments=checked.attachments, clinical={**checked.facts.as_dict(), "_digest": digest},
                   findings=[f.as_dict() for f in checked.findings], slot_id=data.slot_id, created_by=actor.username,
                   idem_owner=owner if key else None, idempotency_key=key, created_at=now, updated_at=now,
                   **checked.texts)
    session.add(row)
    session.flush()
    session.add(ReferralEvent(referral_id=row.id, at=now, actor=actor.username, from_status=None,
                              to_status=Status.DRAFT.value))
    _check_side(session, actor, row, row.from_org_id, AuditAction.CREATE)
    if submit:
        _refuse_blocking(checked.findings)
        _submit(session, actor, row, now=now)
    return _view(session, actor, row)


def _check_slot(session: Session, actor: Actor, slot_id: int, data: ReferralIn) -> None:
    try:
        slot = scheduling.get_slot(session, actor, slot_id)
    except NotFound as exc:
        raise Invalid("REF-009", f"slot_id: no slot {slot_id}", {"field": "slot_id"}) from exc
    if slot.org_id != data.to_org_id or (data.to_department_id is not None
                                         and slot.department_id != data.to_department_id):
        raise Invalid("REF-009", f"slot_id: slot {slot_id} is not a place of the receiving department",
                      {"field": "slot_id"})
    if slot.pool != "reserved":
        raise Invalid("REF-009", f"slot_id: slot {slot_id} is not a reserved place (预留号源)", {"field": "slot_id"})


def submit_referral(session: Session, actor: Actor, referral_id: int, *, expected_version: int | None = None,
                    now: datetime | None = None) -> ReferralView:
    """Send a draft: the criteria that block are checked again, with today's facts."""
    now = now or utcnow()

    def attempt() -> ReferralView:
        with transaction(session):
            row = _load(session, referral_id, expected_version)
            _check_side(session, actor, row, row.from_org_id, AuditAction.UPDATE, {"transition": "submit"})
            d.check_transition(row.status, Status.SUBMITTED.value)
            _refuse_blocking([criteria.Finding(**{**_finding_args(f)}) for f in row.findings])
            _submit(session, actor, row, now=now)
            return _view(session, actor, row)

    return scheduling.retrying(attempt)


def _finding_args(f: dict) -> dict:
    return {"rule": f["rule"], "severity": f["severity"], "text": (f["zh"], f["en"]),
            "suggest_urgency": f.get("suggest_urgency")}


def _submit(session: Session, actor: Actor, row: Referral, *, now: datetime) -> None:
    """SUBMITTED, with its acceptance deadline. An emergency is accepted implicitly (it
    travels by 120; §3.5); a routine referral to a department that auto-accepts is accepted
    and given its place at once."""
    _move(session, actor, row, Status.SUBMITTED, now=now)
    row.accept_due_at = d.accept_due(now, row.urgency, _sla(settings_of(session)))
    if row.urgency == d.Urgency.EMERGENCY.value:
        _move(session, actor, row, Status.ACCEPTED, now=now, note="emergency: accepted implicitly (120)")
        return
    rule = session.get(IntakeRule, row.to_department_id) if row.to_department_id else None
    if row.urgency == d.Urgency.ROUTINE.value and rule is not None and rule.auto_accept_routine:
        _move(session, actor, row, Status.ACCEPTED, now=now, note="auto-accepted by the receiving department")
        _place(session, actor, row, now=now)


# -- the reserved place ------------------------------------------------------------------------

def _local_today(session: Session, now: datetime) -> date:
    return scheduling.local_day(session, now)


def _place(session: Session, actor: Actor, row: Referral, *, now: datetime, slot_id: int | None = None) -> bool:
    """Book a reserved place for an accepted referral: the one asked for, else the earliest
    free one of the receiving department (and doctor) within the urgency's window. None
    free: an urgent referral is escalated to the alliance's referral centre; a routine one
    waits, accepted, for the desk to schedule it."""
    cfg = settings_of(session)
    today = _local_today(session, now)
    days = cfg.urgent_slot_days if row.urgency == d.Urgency.URGENT.value else cfg.routine_slot_days
    wanted = [s for s in (slot_id, row.slot_id) if s is not None]
    found = scheduling.find_slots(session, actor, scheduling.SlotQuery(
        org_id=row.to_org_id, department_id=row.to_department_id, practitioner_id=row.to_practitioner_id,
        pool="reserved", day_from=today, day_to=today + timedelta(days=days), free_only=True), now=now, limit=20)
    for candidate in dict.fromkeys(wanted + [s.id for s in found]):
        try:
            with session.begin_nested():
                appt = scheduling.book_appointment(session, actor, slot_id=candidate, patient_id=row.patient_id,
                                                   channel="referral", referral_ref=d.ref_code(row.id), now=now)
        except (Conflict, Invalid, NotFound) as exc:
            if slot_id is not None and candidate == slot_id:
                raise Conflict("REF-009", f"the place asked for cannot be booked: {exc.message}",
                               {"slot_id": slot_id}) from exc
            continue
        row.appointment_id, row.scheduled_for, row.slot_id = appt.id, appt.starts_at, appt.slot_id
        _move(session, actor, row, Status.SCHEDULED, now=now, note=f"appointment {appt.id}")
        return True
    if row.urgency == d.Urgency.URGENT.value:
        escalate(session, row, now=now, why="no free reserved place within"
                 f" {cfg.urgent_slot_days} days for an urgent referral")
    return False


def referral_centre(session: Session, row: Referral) -> int:
    """The alliance's referral centre (转诊中心): the lead organisation of an alliance the two
    facilities share, else of one the receiver belongs to, else the receiver itself."""
    sender, receiver = (registry_queries.organization_placement(session, o) for o in (row.from_org_id, row.to_org_id))
    shared = sorted((sender[1] if sender else set()) & (receiver[1] if receiver else set()))
    for alliance_id in shared or sorted(receiver[1] if receiver else set()):
        lead = registry_queries.alliance_lead(session, alliance_id)
        if lead is not None:
            return lead
    return row.to_org_id


def escalate(session: Session, row: Referral, *, now: datetime, why: str) -> None:
    if row.escalated_at is not None:
        return
    row.escalated_at, row.escalation_note = now, why[:300]
    row.escalated_to_org_id = referral_centre(session, row)
    session.add(ReferralEvent(referral_id=row.id, at=now, actor="system:referrals", from_status=row.status,
                              to_status=row.status, note=f"escalated: {why}"[:500]))
    session.flush()
    outbox.publish(session, "referrals.escalated", {"referral_id": row.id})


def _release(session: Session, actor: Actor, row: Referral, *, now: datetime, why: str) -> None:
    """Give the reserved place back (rejection, cancellation, no-show before the session)."""
    if row.appointment_id is None:
        return
    try:
        with session.begin_nested():
            scheduling.cancel_appointment(session, actor, row.appointment_id, reason=why, now=now)
    except (Conflict, Forbidden) as exc:
        # The place was already cancelled, attended or past: nothing to give back.
        if exc.code not in ("SCHED-011", "SCHED-012"):
            raise


def timeline_entries(session: Session, actor: Actor, family: set[int]):
    """The patient timeline's share: referrals, by when they were sent."""
    from ..patients.queries import TimelineEntry

    rows = session.scalars(select(Referral).where(Referral.patient_id.in_(family),
                                                  Referral.status != Status.DRAFT.value)
                           .order_by(Referral.id.desc()).limit(100))
    return [TimelineEntry(r.submitted_at or r.created_at, "referral", r.from_org_id, r.patient_id,
                          {"status": r.status, "direction": r.direction, "urgency": r.urgency,
                           "to_org_id": r.to_org_id, "referral_id": r.id}) for r in rows]


patients.register_timeline_source(timeline_entries)
