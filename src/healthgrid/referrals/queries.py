"""Read models of referrals: the view a page, the API and FHIR show, with display names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..security.domain import mask_name
from . import domain as d
from .models import FollowUpTask, Referral, ReferralEvent

TIMES = ("created_at", "submitted_at", "accepted_at", "scheduled_at", "arrived_at", "in_care_at", "completed_at",
         "back_referred_at", "received_by_primary_at", "followed_up_at", "closed_at", "rejected_at",
         "cancelled_at", "no_show_at", "expired_at")
FORM = ("reason_code", "reason_text", "present_illness", "past_history", "treatment", "insurance_type",
        "insurance_region", "contact_phone", "back_diagnosis", "back_inpatient_no", "back_results",
        "back_treatment", "back_plan", "back_rehab", "followup_note", "reject_reason", "cancel_reason",
        "escalation_note")


@dataclass
class EventView:
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


@dataclass
class ReferralView:
    id: int
    code: str
    direction: str
    urgency: str
    status: str
    patient_id: int
    patient_name: str
    from_org_id: int
    from_org_name: str
    from_department_id: int | None
    from_department_name: str | None
    from_practitioner_id: int | None
    from_practitioner_name: str | None
    to_org_id: int
    to_org_name: str
    to_department_id: int | None
    to_department_name: str | None
    to_practitioner_id: int | None
    to_practitioner_name: str | None
    diagnoses: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    clinical: dict[str, Any]
    findings: list[dict[str, Any]]
    form: dict[str, str | None]
    times: dict[str, datetime | None]
    slot_id: int | None
    appointment_id: int | None
    scheduled_for: datetime | None
    accept_due_at: datetime | None
    escalated_at: datetime | None
    escalated_to_org_id: int | None
    previous_id: int | None
    back_to_org_id: int | None
    back_to_practitioner_id: int | None
    created_by: str
    version: int
    events: list[EventView] = field(default_factory=list)
    followup_due_at: datetime | None = None
    followup_done_at: datetime | None = None
    replayed: bool = False

    @property
    def status_label(self) -> tuple[str, str]:
        return d.STATUS_LABELS[d.Status(self.status)]


def referral(session: Session, referral_id: int, *, for_update: bool = False) -> Referral:
    row = session.get(Referral, referral_id, with_for_update=for_update or None,
                      populate_existing=for_update or None)
    if row is None:
        raise NotFound("REF-001", f"referral {referral_id} not found")
    return row


def views(session: Session, rows: list[Referral], *, unmasked: bool, with_events: bool = False) -> list[ReferralView]:
    if not rows:
        return []
    names = registry_queries.names_of(
        session, orgs=[r.from_org_id for r in rows] + [r.to_org_id for r in rows],
        departments=[x for r in rows for x in (r.from_department_id, r.to_department_id) if x],
        practitioners=[x for r in rows for x in (r.from_practitioner_id, r.to_practitioner_id) if x])
    people = patients.patient_names(session, [r.patient_id for r in rows])
    ids = [r.id for r in rows]
    tasks = {t.referral_id: t for t in session.scalars(select(FollowUpTask).where(FollowUpTask.referral_id.in_(ids)))}
    events: dict[int, list[EventView]] = {}
    if with_events:
        for e in session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id.in_(ids))
                                 .order_by(ReferralEvent.id)):
            events.setdefault(e.referral_id, []).append(EventView(e.at, e.actor, e.from_status, e.to_status, e.note))
    out = []
    for r in rows:
        name = people.get(r.patient_id, "")
        task = tasks.get(r.id)
        out.append(ReferralView(
            id=r.id, code=d.ref_code(r.id), direction=r.direction, urgency=r.urgency, status=r.status,
            patient_id=r.patient_id, patient_name=name if unmasked else mask_name(name),
            from_org_id=r.from_org_id, from_org_name=names["org"].get(r.from_org_id, ""),
            from_department_id=r.from_department_id,
            from_department_name=names["department"].get(r.from_department_id),
            from_practitioner_id=r.from_practitioner_id,
            from_practitioner_name=names["practitioner"].get(r.from_practitioner_id),
            to_org_id=r.to_org_id, to_org_name=names["org"].get(r.to_org_id, ""),
            to_department_id=r.to_department_id, to_department_name=names["department"].get(r.to_department_id),
            to_practitioner_id=r.to_practitioner_id,
            to_practitioner_name=names["practitioner"].get(r.to_practitioner_id),
            diagnoses=list(r.diagnoses or []), attachments=list(r.attachments or []),
            clinical={k: v for k, v in (r.clinical or {}).items() if not k.startswith("_")},
            findings=list(r.findings or []), form={k: getattr(r, k) for k in FORM},
            times={k: getattr(r, k) for k in TIMES}, slot_id=r.slot_id, appointment_id=r.appointment_id,
            scheduled_for=r.scheduled_for, accept_due_at=r.accept_due_at, escalated_at=r.escalated_at,
            escalated_to_org_id=r.escalated_to_org_id, previous_id=r.previous_id, back_to_org_id=r.back_to_org_id,
            back_to_practitioner_id=r.back_to_practitioner_id, created_by=r.created_by, version=r.version,
            events=events.get(r.id, []), followup_due_at=task.due_at if task else None,
            followup_done_at=task.done_at if task else None))
    return out
