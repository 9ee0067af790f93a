"""REST API of scheduling under ``/api/scheduling``: parse, one service call, render.
Permissions, scope, the booking rules and audit are decided in the service.

Writes that a client may retry take an ``Idempotency-Key`` header: a retried booking answers
the first one (200 instead of 201) and never books twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ..http import SessionDep
from ..security.http import ActorDep
from . import exam_booking, schedules, service

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
OptId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=0, le=500)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)]
Channel = Literal["web", "phone", "kiosk", "window"]
Pool = Literal["reserved", "web", "phone", "kiosk", "window"]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class AppointmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    patient_id: int
    patient_name: str
    org_id: int
    org_name: str
    department_id: int | None
    department_name: str | None
    practitioner_id: int | None
    practitioner_name: str | None
    schedule_id: int
    session_id: int
    slot_id: int
    kind: str
    day: date
    starts_at: datetime
    ends_at: datetime
    channel: str
    pool: str
    fee_class: str
    referral_ref: str | None
    exam_code: str | None
    exam_booking_id: int | None
    cancel_reason: str | None
    rebooked_as: int | None = Field(None, description="after a stop-clinic notice: the appointment it became")
    offer_expires_at: datetime | None
    checked_in_at: datetime | None
    version: int


class SlotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    session_id: int
    schedule_id: int
    org_id: int
    department_id: int | None
    practitioner_id: int | None
    day: date
    part: str
    starts_at: datetime
    ends_at: datetime
    pool: str
    capacity: int
    booked: int
    free: int
    session_status: str
    released_back: bool
    public_release_at: datetime


class AppointmentList(BaseModel):
    items: list[AppointmentOut]


class BookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot_id: Id
    patient_id: Id
    channel: Channel = "web"
    referral_ref: str | None = Field(None, min_length=1, max_length=60,
                                     description="the referral this booking serves: needed for a reserved place")


@router.post("/appointments", response_model=AppointmentOut, status_code=status.HTTP_201_CREATED)
def book(body: BookIn, response: Response, session: SessionDep, actor: ActorDep, key: IdemKey = None):
    view = service.book_appointment(session, actor, slot_id=body.slot_id, patient_id=body.patient_id,
                                    channel=body.channel, referral_ref=body.referral_ref, idempotency_key=key)
    if view.replayed:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("/appointments", response_model=AppointmentList)
def search(session: SessionDep, actor: ActorDep, patient_id: OptId = None, org_id: OptId = None,
           practitioner_id: OptId = None, schedule_id: OptId = None,
           status_: Annotated[Literal["proposed", "booked", "arrived", "fulfilled", "cancelled", "noshow"] | None,
                              Query(alias="status")] = None,
           day_from: date | None = None, day_to: date | None = None, offset: Offset = 0, limit: Limit = 50):
    q = service.AppointmentQuery(patient_id=patient_id, org_id=org_id, practitioner_id=practitioner_id,
                                 schedule_id=schedule_id, status=status_, day_from=day_from, day_to=day_to)
    return {"items": service.search_appointments(session, actor, q, offset=offset, limit=limit)}


@router.get("/appointments/mine", response_model=AppointmentList)
def mine(session: SessionDep, actor: ActorDep, upcoming: bool = False):
    return {"items": service.my_appointments(session, actor, upcoming_only=upcoming)}


@router.get("/appointments/{appointment_id}", response_model=AppointmentOut)
def read(appointment_id: RowId, session: SessionDep, actor: ActorDep):
    return service.get_appointment(session, actor, appointment_id)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=300)
    expected_version: Id | None = None


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentOut)
def cancel(appointment_id: RowId, body: CancelIn, session: SessionDep, actor: ActorDep):
    return service.cancel_appointment(session, actor, appointment_id, reason=body.reason,
                                      expected_version=body.expected_version)


@router.post("/appointments/{appointment_id}/check-in", response_model=AppointmentOut)
def check_in(appointment_id: RowId, session: SessionDep, actor: ActorDep):
    return service.check_in(session, actor, appointment_id)


@router.post("/appointments/{appointment_id}/complete", response_model=AppointmentOut)
def complete(appointment_id: RowId, session: SessionDep, actor: ActorDep):
    return service.complete_appointment(session, actor, appointment_id)


class RebookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot_id: Id


@router.post("/appointments/{appointment_id}/rebook", response_model=AppointmentOut,
             status_code=status.HTTP_201_CREATED)
def rebook(appointment_id: RowId, body: RebookIn, response: Response, session: SessionDep, actor: ActorDep,
           key: IdemKey = None):
    """改约: a new place for an appointment a stop-clinic notice cancelled."""
    view = service.rebook_appointment(session, actor, appointment_id, slot_id=body.slot_id, idempotency_key=key)
    if view.replayed:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("/appointments/{appointment_id}/rebooking-options", response_model=list[SlotOut])
def rebooking_options(appointment_id: RowId, session: SessionDep, actor: ActorDep):
    """Free places in the same department after a stop-clinic notice."""
    return service.rebooking_choices(session, actor, appointment_id)


@router.post("/appointments/{appointment_id}/accept", response_model=AppointmentOut)
def accept(appointment_id: RowId, session: SessionDep, actor: ActorDep):
    """Take the place a waitlist offer holds (proposed -> booked)."""
    return service.accept_offer(session, actor, appointment_id)


class DayListEntryOut(BaseModel):
    number: int
    appointment: AppointmentOut


@router.get("/day-list", response_model=list[DayListEntryOut])
def day_list(session: SessionDep, actor: ActorDep, day: date, practitioner_id: OptId = None,
             schedule_id: OptId = None, org_id: OptId = None):
    return [{"number": e.number, "appointment": e.appointment} for e in service.day_list(
        session, actor, day=day, practitioner_id=practitioner_id, schedule_id=schedule_id, org_id=org_id)]


class SlotList(BaseModel):
    items: list[SlotOut]


@router.get("/slots", response_model=SlotList)
def slots(session: SessionDep, actor: ActorDep, org_id: OptId = None, department_id: OptId = None,
          practitioner_id: OptId = None, schedule_id: OptId = None, session_id: OptId = None,
          kind: Literal["clinic", "exam"] | None = None, exam_kind: Annotated[str | None, Query(max_length=10)] = None,
          day_from: date | None = None, day_to: date | None = None, pool: Pool | None = None, free_only: bool = True,
          offset: Offset = 0, limit: Limit = 200):
    q = service.SlotQuery(org_id=org_id, department_id=department_id, practitioner_id=practitioner_id,
                          schedule_id=schedule_id, session_id=session_id, kind=kind, exam_kind=exam_kind,
                          day_from=day_from, day_to=day_to, pool=pool, free_only=free_only)
    return {"items": service.find_slots(session, actor, q, offset=offset, limit=limit)}


@router.get("/slots/{slot_id}", response_model=SlotOut)
def slot(slot_id: RowId, session: SessionDep, actor: ActorDep):
    return service.get_slot(session, actor, slot_id)


# -- waitlist and family members -------------------------------------------------------------------

class WaitlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: Id
    patient_id: Id
    channel: Channel = "web"


class WaitlistOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    session_id: int
    patient_id: int
    status: str
    position: int
    appointment_id: int | None


@router.post("/waitlist", response_model=WaitlistOut, status_code=status.HTTP_201_CREATED)
def join_waitlist(body: WaitlistIn, session: SessionDep, actor: ActorDep):
    return service.join_waitlist(session, actor, session_id=body.session_id, patient_id=body.patient_id,
                                 channel=body.channel)


@router.delete("/waitlist/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
def leave_waitlist(entry_id: RowId, session: SessionDep, actor: ActorDep) -> None:
    service.leave_waitlist(session, actor, entry_id)


class ProxyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    id_number: str = Field(min_length=15, max_length=18)
    relationship: str = Field(max_length=20, description="spouse | parent | child | sibling | grandparent |"
                                                         " grandchild | other")


class ProxyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    name: str
    relationship: str


@router.post("/family", response_model=ProxyOut, status_code=status.HTTP_201_CREATED)
def add_family(body: ProxyIn, session: SessionDep, actor: ActorDep):
    return service.add_proxy(session, actor, name=body.name, id_number=body.id_number,
                             relationship=body.relationship)


@router.get("/family", response_model=list[ProxyOut])
def family(session: SessionDep, actor: ActorDep):
    return service.list_proxies(session, actor)


# -- schedules ---------------------------------------------------------------------------------------

Clock = Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}$", description="HH:MM, local time")]


class TemplateIO(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekday: int = Field(ge=0, le=6, description="0 Monday .. 6 Sunday")
    part: Literal["am", "pm", "eve"]
    start: Clock
    end: Clock
    slot_minutes: int = Field(15, ge=5, le=240)
    per_slot: int = Field(1, ge=1, le=50)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: Id
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["clinic", "exam"] = "clinic"
    fee_class: Literal["general", "expert", "special"] = "general"
    department_id: Id | None = None
    practitioner_id: Id | None = None
    equipment_id: Id | None = None
    reserve_ratio: float | None = Field(None, ge=0, le=1)
    reserve_lead_days: int | None = Field(None, ge=0, le=90)
    release_back_hours: int | None = Field(None, ge=0, le=720)
    open_days_ahead: int | None = Field(None, ge=0, le=90)
    release_time: Clock | None = None
    channel_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None
    templates: list[TemplateIO] = Field(default_factory=list, max_length=21)


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    org_id: int
    org_name: str
    kind: str
    name: str
    fee_class: str
    department_id: int | None
    department_name: str | None
    practitioner_id: int | None
    practitioner_name: str | None
    equipment_id: int | None
    exam_kind: str | None
    reserve_ratio: float
    reserve_lead_days: int
    release_back_hours: int
    open_days_ahead: int
    release_minute: int
    channel_shares: dict[str, float]
    active: bool
    version: int
    templates: list[TemplateIO] = []


def _schedule_out(view) -> dict:
    from .domain import clock

    data = {k: getattr(view, k) for k in ScheduleOut.model_fields if k != "templates"}
    data["templates"] = [TemplateIO(weekday=t.weekday, part=t.part, start=clock(t.start_minute),
                                    end=clock(t.end_minute), slot_minutes=t.slot_minutes, per_slot=t.per_slot)
                         for t in view.templates]
    return data


@router.post("/schedules", response_model=ScheduleOut, status_code=status.HTTP_201_CREATED)
def create_schedule(body: ScheduleIn, session: SessionDep, actor: ActorDep):
    data = schedules.ScheduleIn(**body.model_dump(exclude={"templates"}),
                                templates=[schedules.TemplateIn(**t.model_dump()) for t in body.templates])
    return _schedule_out(schedules.create_schedule(session, actor, data))


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(session: SessionDep, actor: ActorDep, org_id: OptId = None, department_id: OptId = None,
                   practitioner_id: OptId = None, kind: Literal["clinic", "exam"] | None = None,
                   offset: Offset = 0, limit: Limit = 100):
    return [_schedule_out(v) for v in schedules.list_schedules(
        session, actor, org_id=org_id, department_id=department_id, practitioner_id=practitioner_id, kind=kind,
        offset=offset, limit=limit)]


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
def get_schedule(schedule_id: RowId, session: SessionDep, actor: ActorDep):
    return _schedule_out(schedules.get_schedule(session, actor, schedule_id))


class TemplatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    templates: list[TemplateIO] = Field(max_length=21)
    expected_version: Id | None = None


@router.put("/schedules/{schedule_id}/templates", response_model=ScheduleOut)
def set_templates(schedule_id: RowId, body: TemplatesIn, session: SessionDep, actor: ActorDep):
    return _schedule_out(schedules.set_templates(
        session, actor, schedule_id, [schedules.TemplateIn(**t.model_dump()) for t in body.templates],
        expected_version=body.expected_version))


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    schedule_id: int
    day: date
    part: str
    starts_at: datetime
    ends_at: datetime
    status: str
    stop_reason: str | None
    capacity: int
    booked: int
    free_by_pool: dict[str, int]
    public_release_at: datetime
    released_back: bool


@router.get("/schedules/{schedule_id}/sessions", response_model=list[SessionOut])
def sessions(schedule_id: RowId, session: SessionDep, actor: ActorDep, day_from: date, day_to: date):
    return schedules.sessions_of(session, actor, schedule_id=schedule_id, day_from=day_from, day_to=day_to)


class QuotaPolicyIO(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    org_id: Id
    department_id: Id | None = Field(None, description="none: the hospital's policy for departments without one")
    reserve_ratio: float = Field(0.3, ge=0, le=1, description="预留号源 share of each session (§3.6)")
    reserve_lead_days: int = Field(14, ge=0, le=90, description="referrers book this many days before the public")
    release_back_hours: int = Field(48, ge=0, le=720, description="unbooked reserved places go public this long"
                                                                   " before the session")
    open_days_ahead: int = Field(7, ge=0, le=90, description="public booking opens this many days ahead ...")
    release_time: Clock = Field("08:00", description="... at this local time")


class QuotaPolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    org_id: int
    department_id: int | None
    reserve_ratio: float
    reserve_lead_days: int
    release_back_hours: int
    open_days_ahead: int
    release_minute: int
    updated_by: str
    updated_at: datetime
    schedules_updated: int


@router.put("/quota-policies", response_model=QuotaPolicyOut)
def set_quota_policy(body: QuotaPolicyIO, session: SessionDep, actor: ActorDep):
    """A hospital's or department's reserved-quota and release rules; its schedules follow."""
    return schedules.set_quota_policy(session, actor, schedules.QuotaPolicyIn(**body.model_dump()))


@router.get("/quota-policies", response_model=list[QuotaPolicyOut])
def quota_policies(session: SessionDep, actor: ActorDep, org_id: Annotated[int, Query(ge=1, le=2**31 - 1)]):
    return schedules.list_quota_policies(session, actor, org_id=org_id)


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: Id
    day: date
    kind: Literal["holiday", "stop"]
    reason: str = Field(min_length=2, max_length=300)
    schedule_id: Id | None = None
    part: Literal["am", "pm", "eve"] | None = None


class ClosureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    org_id: int
    schedule_id: int | None
    day: date
    part: str | None
    kind: str
    reason: str
    stopped_sessions: int
    cancelled_appointments: int


@router.post("/closures", response_model=ClosureOut, status_code=status.HTTP_201_CREATED)
def add_closure(body: ClosureIn, session: SessionDep, actor: ActorDep):
    """A holiday (the whole organisation) or a stop-clinic notice (停诊) for one schedule."""
    return schedules.add_closure(session, actor, **body.model_dump())


# -- exam booking centre -----------------------------------------------------------------------------

class ExamPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: Id
    exams: list[Annotated[str, Field(max_length=20)]] = Field(min_length=1, max_length=6)
    channel: Channel = "window"
    day_from: date | None = None


class ExamBookIn(ExamPlanIn):
    patient_id: Id


class PlannedExamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    slot_id: int
    day: date
    starts_at: datetime
    ends_at: datetime
    prep: str


class ExamPlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    trips: int
    items: list[PlannedExamOut]
    instructions: list[str]


class ExamBookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    trips: int
    appointments: list[AppointmentOut]
    instructions: list[str]


@router.post("/exam-plans", response_model=ExamPlanOut)
def plan_exams(body: ExamPlanIn, session: SessionDep, actor: ActorDep, lang: Literal["zh", "en"] = "zh"):
    """The plan for several exams (fewest trips, preparation rules honoured); nothing is booked."""
    return exam_booking.plan_exam_booking(session, actor, org_id=body.org_id, codes=body.exams,
                                          channel=body.channel, day_from=body.day_from, lang=lang)


@router.post("/exam-bookings", response_model=ExamBookingOut, status_code=status.HTTP_201_CREATED)
def book_exams(body: ExamBookIn, session: SessionDep, actor: ActorDep, key: IdemKey = None):
    return exam_booking.book_exams(session, actor, patient_id=body.patient_id, org_id=body.org_id,
                                   codes=body.exams, channel=body.channel, day_from=body.day_from,
                                   idempotency_key=key)
