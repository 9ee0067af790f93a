"""The referral's steps after it is sent: the receiving side accepts (booking the reserved
place), schedules, rejects, receives the patient, treats and refers back (回转); the sender
cancels; primary care receives the patient back, follows up within two weeks and closes; the
alliance's referral centre redirects what could not be placed. Each step is one transaction
through ``service._change``: lock, check the side, move, then the step's own work.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Conflict, Invalid
from ..registry import queries as registry_queries
from ..scheduling import service as scheduling
from ..security.domain import Actor, AuditAction
from . import criteria
from . import domain as d
from .models import FollowUpTask, Referral, ReferralEvent
from .queries import ReferralView
from .service import (
    ReferralIn,
    Status,
    _change,
    _check_place,
    _check_side,
    _check_slot,
    _load,
    _move,
    _place,
    _refuse_blocking,
    _release,
    _side_org,
    _sla,
    _submit,
    _validate,
    _view,
    referral_centre,
    settings_of,
)


@dataclass
class BackReferralIn:
    """The back-referral form (双向转诊(回转)单, §3.4)."""

    diagnosis: str
    results: str | None = None
    treatment: str | None = None
    plan: str | None = None  # 下一步治疗方案
    rehab: str | None = None  # 康复建议
    inpatient_no: str | None = None
    to_org_id: int | None = None  # the referring facility by default
    to_practitioner_id: int | None = None
    clinical: dict = field(default_factory=dict)  # condition_stable, diagnosis_confirmed, BP ...


# -- the receiving side ------------------------------------------------------------------------

def accept_referral(session: Session, actor: Actor, referral_id: int, *, slot_id: int | None = None,
                    to_practitioner_id: int | None = None, expected_version: int | None = None,
                    now: datetime | None = None) -> ReferralView:
    """接收: the receiving desk accepts; the reserved place is booked in the same transaction."""
    now = now or utcnow()

    def then(row: Referral) -> None:
        if to_practitioner_id is not None:
            _check_place(session, row.to_org_id, None, to_practitioner_id, "to")
            row.to_practitioner_id = to_practitioner_id
        if row.urgency != d.Urgency.EMERGENCY.value:
            _place(session, actor, row, now=now, slot_id=slot_id)

    return _change(session, actor, referral_id, Status.ACCEPTED, expected_version=expected_version, now=now,
                   then=then)


def schedule_referral(session: Session, actor: Actor, referral_id: int, *, slot_id: int | None = None,
                      expected_version: int | None = None, now: datetime | None = None) -> ReferralView:
    """Bind a reserved place to an accepted referral that has none yet."""
    now = now or utcnow()

    def attempt() -> ReferralView:
        with transaction(session):
            row = _load(session, referral_id, expected_version)
            _check_side(session, actor, row, row.to_org_id, AuditAction.UPDATE, {"transition": "schedule"})
            d.check_transition(row.status, Status.SCHEDULED.value)
            if not _place(session, actor, row, now=now, slot_id=slot_id):
                raise Conflict("REF-007", "no free reserved place in the receiving department; choose another"
                               " department or ask the referral centre", {"referral_id": row.id})
            return _view(session, actor, row)

    return scheduling.retrying(attempt)


def reject_referral(session: Session, actor: Actor, referral_id: int, *, reason: str,
                    expected_version: int | None = None, now: datetime | None = None) -> ReferralView:
    why = d.check_reason(Status.REJECTED, reason)
    now = now or utcnow()

    def then(row: Referral) -> None:
        row.reject_reason = why
        _release(session, actor, row, now=now, why=f"referral {d.ref_code(row.id)} rejected")

    return _change(session, actor, referral_id, Status.REJECTED, expected_version=expected_version, now=now,
                   note=why, then=then)


def cancel_referral(session: Session, actor: Actor, referral_id: int, *, reason: str,
                    expected_version: int | None = None, now: datetime | None = None) -> ReferralView:
    why = d.check_reason(Status.CANCELLED, reason)
    now = now or utcnow()

    def then(row: Referral) -> None:
        row.cancel_reason = why
        _release(session, actor, row, now=now, why=f"referral {d.ref_code(row.id)} cancelled")

    return _change(session, actor, referral_id, Status.CANCELLED, expected_version=expected_version, now=now,
                   note=why, then=then)


def mark_no_show(session: Session, actor: Actor, referral_id: int, *, expected_version: int | None = None,
                 now: datetime | None = None) -> ReferralView:
    now = now or utcnow()

    def then(row: Referral) -> None:
        _release(session, actor, row, now=now, why=f"referral {d.ref_code(row.id)}: patient did not come")

    return _change(session, actor, referral_id, Status.NO_SHOW, expected_version=expected_version, now=now,
                   then=then)


def mark_arrived(session: Session, actor: Actor, referral_id: int, *, expected_version: int | None = None,
                 now: datetime | None = None) -> ReferralView:
    """The patient came (到诊); on the appointment's day this is also its check-in."""
    now = now or utcnow()

    def then(row: Referral) -> None:
        if row.appointment_id is None:
            return
        try:
            with session.begin_nested():
                scheduling.check_in(session, actor, row.appointment_id, now=now)
        except Conflict:
            pass  # checked in already, or another day: the referral records the arrival itself

    return _change(session, actor, referral_id, Status.ARRIVED, expected_version=expected_version, now=now,
                   then=then)


def start_care(session: Session, actor: Actor, referral_id: int, *, expected_version: int | None = None,
               now: datetime | None = None) -> ReferralView:
    return _change(session, actor, referral_id, Status.IN_CARE, expected_version=expected_version, now=now)


def complete_referral(session: Session, actor: Actor, referral_id: int, *, expected_version: int | None = None,
                      now: datetime | None = None) -> ReferralView:
    return _change(session, actor, referral_id, Status.COMPLETED, expected_version=expected_version, now=now)


def back_refer(session: Session, actor: Actor, referral_id: int, data: BackReferralIn, *,
               expected_version: int | None = None, now: datetime | None = None) -> ReferralView:
    """回转: the hospital sends the patient back with the back-referral form. The down-referral
    criteria apply (§3.3: stable, plan settled); primary care gets a follow-up task due
    ``followup_days`` later (§3.1: within two weeks)."""
    now = now or utcnow()
    texts = d.check_texts({"back_diagnosis": data.diagnosis, "back_results": data.results,
                           "back_treatment": data.treatment, "back_plan": data.plan, "back_rehab": data.rehab,
                           "back_inpatient_no": data.inpatient_no}, required=("back_diagnosis",))
    facts = replace(criteria.facts_from(data.clinical), care_plan=texts["back_plan"])

    def then(row: Referral) -> None:
        to_org = data.to_org_id or row.from_org_id
        to_doctor = data.to_practitioner_id if data.to_org_id else (data.to_practitioner_id or row.from_practitioner_id)
        _check_place(session, to_org, None, data.to_practitioner_id, "back_to")
        levels = [registry_queries.organization_or_none(session, o) for o in (row.to_org_id, to_org)]
        if levels[1] is None:
            raise Invalid("REF-005", f"to_org_id: no organisation {to_org}", {"field": "to_org_id"})
        route = criteria.Route(d.Direction.DOWN.value, d.Urgency.ROUTINE.value, levels[0].level, levels[1].level,
                               registry_queries.share_alliance(session, row.to_org_id, to_org))
        findings = criteria.evaluate(route, facts, settings_of(session).criteria)
        _refuse_blocking(findings)
        for name, value in texts.items():
            setattr(row, name, value)
        row.back_to_org_id, row.back_to_practitioner_id = to_org, to_doctor
        row.findings = list(row.findings or []) + [{**f.as_dict(), "stage": "back"} for f in findings]
        session.add(FollowUpTask(referral_id=row.id, kind="followup", patient_id=row.patient_id, org_id=to_org,
                                 practitioner_id=to_doctor, due_at=d.followup_due(now, _sla(settings_of(session))),
                                 created_at=now))
        session.flush()

    return _change(session, actor, referral_id, Status.BACK_REFERRED, expected_version=expected_version, now=now,
                   then=then)


# -- back in primary care -----------------------------------------------------------------------

def receive_back(session: Session, actor: Actor, referral_id: int, *, expected_version: int | None = None,
                 now: datetime | None = None) -> ReferralView:
    return _change(session, actor, referral_id, Status.RECEIVED_BY_PRIMARY, expected_version=expected_version,
                   now=now)


def record_followup(session: Session, actor: Actor, referral_id: int, *, outcome: str,
                    expected_version: int | None = None, now: datetime | None = None) -> ReferralView:
    """The primary doctor's follow-up (转诊后随访). From BACK_REFERRED it receives the patient
    first: two transitions, both logged."""
    text = (outcome or "").strip()
    if not 1 <= len(text) <= 4000:
        raise Invalid("REF-005", "outcome: what the follow-up found, 1 to 4000 characters", {"field": "outcome"})
    now = now or utcnow()

    def attempt() -> ReferralView:
        with transaction(session):
            row = _load(session, referral_id, expected_version)
            _check_side(session, actor, row, _side_org(row, Status.FOLLOWED_UP), AuditAction.UPDATE,
                        {"transition": "follow-up"})
            if row.status == Status.BACK_REFERRED.value:
                _move(session, actor, row, Status.RECEIVED_BY_PRIMARY, now=now)
            _move(session, actor, row, Status.FOLLOWED_UP, now=now, note=text[:500])
            row.followup_note = text
            task = session.scalar(select(FollowUpTask).where(FollowUpTask.referral_id == row.id,
                                                             FollowUpTask.kind == "followup"))
            if task is not None:
                task.done_at, task.done_by, task.outcome = now, actor.username, text
            session.flush()
            return _view(session, actor, row)

    return scheduling.retrying(attempt)


def close_referral(session: Session, actor: Actor, referral_id: int, *, note: str | None = None,
                   expected_version: int | None = None, now: datetime | None = None) -> ReferralView:
    return _change(session, actor, referral_id, Status.CLOSED, expected_version=expected_version, now=now,
                   note=(note or "").strip()[:500] or None)


def redirect_referral(session: Session, actor: Actor, referral_id: int, *, to_org_id: int,
                      to_department_id: int | None = None, to_practitioner_id: int | None = None,
                      slot_id: int | None = None, now: datetime | None = None) -> ReferralView:
    """The referral centre sends an expired or escalated referral elsewhere: a new referral
    with the same form (``previous_id``), submitted; an accepted one left without a place is
    cancelled with the redirection as its reason."""
    now = now or utcnow()

    def attempt() -> ReferralView:
        with transaction(session):
            old = _load(session, referral_id, None)
            centre = old.escalated_to_org_id or referral_centre(session, old)
            _check_side(session, actor, old, centre, AuditAction.UPDATE, {"transition": "redirect"})
            if old.status not in (Status.EXPIRED.value, Status.ACCEPTED.value, Status.REJECTED.value):
                raise Conflict("REF-002", f"a referral that is {old.status} is not redirected; the centre redirects"
                               " expired, rejected or accepted-without-place referrals", {"from": old.status})
            data = ReferralIn(patient_id=old.patient_id, from_org_id=old.from_org_id, to_org_id=to_org_id,
                              diagnoses=list(old.diagnoses), urgency=old.urgency,
                              from_department_id=old.from_department_id,
                              from_practitioner_id=old.from_practitioner_id, to_department_id=to_department_id,
                              to_practitioner_id=to_practitioner_id, reason_code=old.reason_code,
                              reason_text=old.reason_text, present_illness=old.present_illness,
                              past_history=old.past_history, treatment=old.treatment,
                              attachments=list(old.attachments or []), insurance_type=old.insurance_type,
                              insurance_region=old.insurance_region, contact_phone=old.contact_phone,
                              clinical={k: v for k, v in (old.clinical or {}).items() if not k.startswith("_")},
                              slot_id=slot_id)
            checked = _validate(session, data)
            _refuse_blocking(checked.findings)
            if slot_id is not None:
                _check_slot(session, actor, slot_id, data)
            if old.status == Status.ACCEPTED.value:
                old.cancel_reason = f"redirected by the referral centre to organisation {to_org_id}"
                _move(session, actor, old, Status.CANCELLED, now=now, note=old.cancel_reason)
            new = Referral(direction=checked.direction, urgency=old.urgency, status=Status.DRAFT.value,
                           patient_id=old.patient_id, from_org_id=old.from_org_id,
                           from_department_id=old.from_department_id, from_practitioner_id=old.from_practitioner_id,
                           to_org_id=to_org_id, to_department_id=to_department_id,
                           to_practitioner_id=to_practitioner_id, diagnoses=list(old.diagnoses),
                           attachments=list(old.attachments or []), clinical=dict(old.clinical or {}),
                           findings=[f.as_dict() for f in checked.findings], slot_id=slot_id,
                           previous_id=old.id, created_by=actor.username, created_at=now, updated_at=now,
                           **checked.texts)
            session.add(new)
            session.flush()
            session.add(ReferralEvent(referral_id=new.id, at=now, actor=actor.username, from_status=None,
                                      to_status=Status.DRAFT.value, note=f"redirected from {d.ref_code(old.id)}"))
            _submit(session, actor, new, now=now)
            return _view(session, actor, new)

    return scheduling.retrying(attempt)
