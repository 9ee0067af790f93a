"""REST API of two-way referral under ``/api/referrals``: parse, one service call, render.
Permissions, scope, the state machine, the criteria and the audit are the service's.

Creating a referral takes an ``Idempotency-Key`` header: a retried request answers the first
referral (200 instead of 201) and never sends it twice. Each change takes the
``expected_version`` it was read at (REF-004 when someone changed it meanwhile).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ..http import SessionDep
from ..scheduling.api import SlotOut
from ..security.http import ActorDep
from . import desk as ref_desk
from . import measures, service
from . import workflow as ref_workflow

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
OptId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=0, le=500)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Version = Annotated[int | None, Field(None, ge=1, le=2**31 - 1)]
StatusName = Literal["draft", "submitted", "accepted", "scheduled", "arrived", "in_care", "completed",
                     "back_referred", "received_by_primary", "followed_up", "closed", "rejected", "cancelled",
                     "no_show", "expired"]
Text = Annotated[str | None, Field(None, max_length=4000)]


class DiagnosisIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=20, description="ICD-10 (GB/T 14396, national clinical edition)")
    name: str = Field(min_length=1, max_length=200)


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["lab_report", "imaging_report", "record_summary", "discharge_summary", "other"]
    ref: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=200)
    date: str | None = Field(None, max_length=10)


class ClinicalIn(BaseModel):
    """The facts the referral criteria read (referrals/criteria.py)."""

    model_config = ConfigDict(extra="forbid")
    sbp: int | None = Field(None, ge=40, le=300)
    dbp: int | None = Field(None, ge=20, le=200)
    fpg: float | None = Field(None, ge=0.5, le=60)
    heart_rate: int | None = Field(None, ge=20, le=300)
    temperature: float | None = Field(None, ge=30, le=45)
    pregnant_or_breastfeeding: bool = False
    red_flags: list[str] = Field(default_factory=list, max_length=20)
    uncontrolled_visits: int = Field(0, ge=0, le=50)
    diagnosis_confirmed: bool | None = None
    condition_stable: bool | None = None
    care_plan: str | None = Field(None, max_length=4000, description="a down-referral's plan (下一步治疗方案)")


class ReferralIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: Id
    from_org_id: Id
    to_org_id: Id
    diagnoses: list[DiagnosisIn] = Field(min_length=1, max_length=20)
    urgency: Literal["emergency", "urgent", "routine"] = "routine"
    direction: Literal["up", "down", "lateral"] | None = None
    from_department_id: Id | None = None
    from_practitioner_id: Id | None = None
    to_department_id: Id | None = None
    to_practitioner_id: Id | None = None
    reason_code: str | None = Field(None, max_length=40)
    reason_text: str | None = Field(None, max_length=1000)
    present_illness: Text = None
    past_history: Text = None
    treatment: Text = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=30)
    insurance_type: Literal["employee", "resident", "new_rural", "self_pay", "other"] | None = None
    insurance_region: str | None = Field(None, max_length=12)
    contact_phone: str | None = Field(None, max_length=40)
    clinical: ClinicalIn = Field(default_factory=ClinicalIn)
    slot_id: Id | None = Field(None, description="a free reserved place of the receiving department")
    submit: bool = Field(True, description="false keeps it as a draft")

    def to_service(self) -> service.ReferralIn:
        data = self.model_dump(exclude={"submit"})
        data["clinical"] = self.clinical.model_dump(exclude_defaults=True)
        return service.ReferralIn(**data)


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


class ReferralOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str = Field(description="the number on the printed form and the booking's referral reference")
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
    findings: list[dict[str, Any]] = Field(description="the criteria checks (block / warn / info)")
    form: dict[str, str | None]
    times: dict[str, datetime | None]
    appointment_id: int | None
    scheduled_for: datetime | None
    accept_due_at: datetime | None
    escalated_at: datetime | None
    escalated_to_org_id: int | None
    previous_id: int | None
    back_to_org_id: int | None
    back_to_practitioner_id: int | None
    followup_due_at: datetime | None
    followup_done_at: datetime | None
    events: list[EventOut]
    version: int


class ReferralList(BaseModel):
    items: list[ReferralOut]


def _out(view) -> ReferralOut:
    return ReferralOut.model_validate(view)


@router.post("", response_model=ReferralOut, status_code=status.HTTP_201_CREATED)
def create(body: ReferralIn, response: Response, session: SessionDep, actor: ActorDep, key: IdemKey = None):
    view = service.create_referral(session, actor, body.to_service(), submit=body.submit, idempotency_key=key)
    if view.replayed:
        response.status_code = status.HTTP_200_OK
    return _out(view)


class FindingOut(BaseModel):
    rule: str
    severity: str
    zh: str
    en: str
    suggest_urgency: str | None


@router.post("/criteria", response_model=list[FindingOut])
def criteria(body: ReferralIn, session: SessionDep, actor: ActorDep):
    """The criteria hints for a form, without sending it."""
    return [f.as_dict() for f in service.check_criteria(session, actor, body.to_service())]


@router.get("", response_model=ReferralList)
def search(session: SessionDep, actor: ActorDep, org_id: OptId = None,
           box: Literal["in", "out", "centre", "back"] | None = None, patient_id: OptId = None,
           status_: Annotated[list[StatusName] | None, Query(alias="status")] = None,
           direction: Literal["up", "down", "lateral"] | None = None,
           urgency: Literal["emergency", "urgent", "routine"] | None = None, requester_id: OptId = None,
           performer_org_id: OptId = None, since: datetime | None = None, until: datetime | None = None,
           overdue: bool = False, offset: Offset = 0, limit: Limit = 50):
    q = ref_desk.ReferralQuery(org_id=org_id, box=box, patient_id=patient_id, status=list(status_ or []),
                              direction=direction, urgency=urgency, requester_id=requester_id,
                              performer_org_id=performer_org_id, since=since, until=until, overdue=overdue)
    return {"items": [_out(v) for v in ref_desk.search_referrals(session, actor, q, offset=offset, limit=limit)]}


@router.get("/reserved-places", response_model=list[SlotOut])
def reserved_places(session: SessionDep, actor: ActorDep, org_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
                    department_id: OptId = None, practitioner_id: OptId = None,
                    days: Annotated[int, Query(ge=0, le=90)] = 21):
    """Free reserved places (预留号源) of a receiving department for the referring doctor."""
    return ref_desk.reserved_places(session, actor, org_id=org_id, department_id=department_id,
                                   practitioner_id=practitioner_id, days=days)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    due_at: datetime
    done_at: datetime | None
    overdue: bool
    referral: ReferralOut


@router.get("/follow-ups", response_model=list[TaskOut])
def follow_ups(session: SessionDep, actor: ActorDep, org_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
               overdue: bool = False, include_done: bool = False):
    """Primary care's follow-up list of referred-back patients (due 14 days after)."""
    tasks = ref_desk.followup_tasks(session, actor, org_id=org_id, open_only=not include_done, overdue_only=overdue)
    return [{"id": t.id, "due_at": t.due_at, "done_at": t.done_at, "overdue": t.overdue,
             "referral": _out(t.referral)} for t in tasks]


class IntakeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: Id
    auto_accept_routine: bool


@router.put("/intake-rules", status_code=status.HTTP_204_NO_CONTENT)
def put_intake_rule(body: IntakeIn, session: SessionDep, actor: ActorDep):
    """A receiving department accepts routine referrals on submission (or not)."""
    ref_desk.set_intake_rule(session, actor, department_id=body.department_id,
                            auto_accept_routine=body.auto_accept_routine)


class MeasureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    org_id: int | None = Field(description="None in the totals over facilities")
    org_name: str
    level: str | None
    month: str | None = Field(description="YYYY-MM; None in the totals over the period")
    up_sent: int
    up_received: int
    down_sent: int = Field(description="下转人次: back-referrals and direct down-referrals sent")
    down_received: int
    accepted: int
    accept_median_hours: float | None
    accept_p90_hours: float | None
    reserved_places: int
    reserved_booked: int
    utilisation: float | None = Field(description="reserved places booked by a referral / reserved places")
    reached: int
    no_shows: int
    no_show_rate: float | None
    followup_due: int
    followup_in_time: int
    followup_share: float | None = Field(description="followed up within 14 days / due")


class MeasuresOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    since: date
    until: date
    division_id: int | None
    months: list[str]
    rows: list[MeasureOut]
    facilities: list[MeasureOut]
    monthly: list[MeasureOut]
    total: MeasureOut


@router.get("/measures", response_model=MeasuresOut)
def referral_measures(session: SessionDep, actor: ActorDep, since: date, until: date, division_id: OptId = None,
                      org_id: Annotated[list[Annotated[int, Query(ge=1, le=2**31 - 1)]] | None, Query()] = None):
    """Per facility and month: up/down counts, acceptance time, reserved-place utilisation,
    no-show rate and the 14-day follow-up share (definitions: referrals/measures.py)."""
    return measures.referral_measures(session, actor, division_id=division_id, org_ids=org_id, since=since,
                                      until=until)


@router.get("/{referral_id}", response_model=ReferralOut)
def read(referral_id: RowId, session: SessionDep, actor: ActorDep):
    return _out(ref_desk.get_referral(session, actor, referral_id))


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version


class AcceptIn(MoveIn):
    slot_id: Id | None = None
    to_practitioner_id: Id | None = None


class ReasonIn(MoveIn):
    reason: str = Field(min_length=1, max_length=500)


class FollowUpIn(MoveIn):
    outcome: str = Field(min_length=1, max_length=4000)


class CloseIn(MoveIn):
    note: str | None = Field(None, max_length=500)


class ScheduleIn(MoveIn):
    slot_id: Id | None = None


class BackIn(MoveIn):
    diagnosis: str = Field(min_length=1, max_length=1000)
    results: Text = None
    treatment: Text = None
    plan: Text = None
    rehab: Text = None
    inpatient_no: str | None = Field(None, max_length=40)
    to_org_id: Id | None = None
    to_practitioner_id: Id | None = None
    clinical: ClinicalIn = Field(default_factory=ClinicalIn)


class RedirectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_org_id: Id
    to_department_id: Id | None = None
    to_practitioner_id: Id | None = None
    slot_id: Id | None = None


@router.post("/{referral_id}/submit", response_model=ReferralOut)
def submit(referral_id: RowId, body: MoveIn, session: SessionDep, actor: ActorDep):
    return _out(service.submit_referral(session, actor, referral_id, expected_version=body.expected_version))


@router.post("/{referral_id}/accept", response_model=ReferralOut)
def accept(referral_id: RowId, body: AcceptIn, session: SessionDep, actor: ActorDep):
    """接收: books a reserved place in the same transaction (the one asked for, else the earliest)."""
    return _out(ref_workflow.accept_referral(session, actor, referral_id, slot_id=body.slot_id,
                                        to_practitioner_id=body.to_practitioner_id,
                                        expected_version=body.expected_version))


@router.post("/{referral_id}/schedule", response_model=ReferralOut)
def schedule(referral_id: RowId, body: ScheduleIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.schedule_referral(session, actor, referral_id, slot_id=body.slot_id,
                                          expected_version=body.expected_version))


@router.post("/{referral_id}/reject", response_model=ReferralOut)
def reject(referral_id: RowId, body: ReasonIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.reject_referral(session, actor, referral_id, reason=body.reason,
                                        expected_version=body.expected_version))


@router.post("/{referral_id}/cancel", response_model=ReferralOut)
def cancel(referral_id: RowId, body: ReasonIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.cancel_referral(session, actor, referral_id, reason=body.reason,
                                        expected_version=body.expected_version))


@router.post("/{referral_id}/arrive", response_model=ReferralOut)
def arrive(referral_id: RowId, body: MoveIn, session: SessionDep, actor: ActorDep):
    """到诊: on the appointment's day it also checks the appointment in."""
    return _out(ref_workflow.mark_arrived(session, actor, referral_id, expected_version=body.expected_version))


@router.post("/{referral_id}/start-care", response_model=ReferralOut)
def start_care(referral_id: RowId, body: MoveIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.start_care(session, actor, referral_id, expected_version=body.expected_version))


@router.post("/{referral_id}/complete", response_model=ReferralOut)
def complete(referral_id: RowId, body: MoveIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.complete_referral(session, actor, referral_id, expected_version=body.expected_version))


@router.post("/{referral_id}/no-show", response_model=ReferralOut)
def no_show(referral_id: RowId, body: MoveIn, session: SessionDep, actor: ActorDep):
    """The patient did not come: the place is released if the session is still ahead."""
    return _out(ref_workflow.mark_no_show(session, actor, referral_id, expected_version=body.expected_version))


@router.post("/{referral_id}/receive", response_model=ReferralOut)
def receive(referral_id: RowId, body: MoveIn, session: SessionDep, actor: ActorDep):
    """Primary care received the referred-back patient."""
    return _out(ref_workflow.receive_back(session, actor, referral_id, expected_version=body.expected_version))


@router.post("/{referral_id}/back-referral", response_model=ReferralOut)
def back_referral(referral_id: RowId, body: BackIn, session: SessionDep, actor: ActorDep):
    """回转单: refer the patient back with the plan; primary care gets a follow-up task."""
    data = ref_workflow.BackReferralIn(**body.model_dump(exclude={"expected_version", "clinical"}),
                                  clinical=body.clinical.model_dump(exclude_defaults=True))
    return _out(ref_workflow.back_refer(session, actor, referral_id, data, expected_version=body.expected_version))


@router.post("/{referral_id}/follow-up", response_model=ReferralOut)
def follow_up(referral_id: RowId, body: FollowUpIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.record_followup(session, actor, referral_id, outcome=body.outcome,
                                        expected_version=body.expected_version))


@router.post("/{referral_id}/close", response_model=ReferralOut)
def close(referral_id: RowId, body: CloseIn, session: SessionDep, actor: ActorDep):
    return _out(ref_workflow.close_referral(session, actor, referral_id, note=body.note,
                                       expected_version=body.expected_version))


@router.post("/{referral_id}/redirect", response_model=ReferralOut, status_code=status.HTTP_201_CREATED)
def redirect(referral_id: RowId, body: RedirectIn, session: SessionDep, actor: ActorDep):
    """The referral centre sends an expired or escalated referral to another receiver."""
    return _out(ref_workflow.redirect_referral(session, actor, referral_id, **body.model_dump()))
