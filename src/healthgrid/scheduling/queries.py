"""Read models of scheduling: appointments, slots and sessions as the API, FHIR and pages
show them, with the names of the places and people they concern."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..security.domain import mask_name
from .models import Appointment, ClinicSession, Schedule, SessionTemplate, Slot


@dataclass
class AppointmentView:
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
    booked_by: str
    referral_ref: str | None
    exam_code: str | None
    exam_booking_id: int | None
    cancel_reason: str | None
    rebooked_as: int | None
    offer_expires_at: datetime | None
    checked_in_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    replayed: bool = False  # the answer to a retried request with the same Idempotency-Key


def appointment_views(session: Session, rows: list[Appointment], *, unmasked: bool) -> list[AppointmentView]:
    names = registry_queries.names_of(session, orgs=[a.org_id for a in rows],
                                      departments=[a.department_id for a in rows if a.department_id],
                                      practitioners=[a.practitioner_id for a in rows if a.practitioner_id])
    people = patients.patient_names(session, [a.patient_id for a in rows])
    out = []
    for a in rows:
        name = people.get(a.patient_id, "")
        out.append(AppointmentView(
            id=a.id, status=a.status, patient_id=a.patient_id, patient_name=name if unmasked else mask_name(name),
            org_id=a.org_id, org_name=names["org"].get(a.org_id, ""), department_id=a.department_id,
            department_name=names["department"].get(a.department_id), practitioner_id=a.practitioner_id,
            practitioner_name=names["practitioner"].get(a.practitioner_id), schedule_id=a.schedule_id,
            session_id=a.session_id, slot_id=a.slot_id, kind=a.kind, day=a.day, starts_at=a.starts_at,
            ends_at=a.ends_at, channel=a.channel, pool=a.pool, fee_class=a.fee_class, booked_by=a.booked_by,
            referral_ref=a.referral_ref, exam_code=a.exam_code, exam_booking_id=a.exam_booking_id,
            cancel_reason=a.cancel_reason, rebooked_as=a.rebooked_as, offer_expires_at=a.offer_expires_at,
            checked_in_at=a.checked_in_at,
            created_at=a.created_at, updated_at=a.updated_at, version=a.version))
    return out


def appointment(session: Session, appointment_id: int, *, for_update: bool = False) -> Appointment:
    row = session.get(Appointment, appointment_id, with_for_update=for_update or None)
    if row is None:
        raise NotFound("SCHED-025", f"appointment {appointment_id} not found")
    return row


def schedule(session: Session, schedule_id: int) -> Schedule:
    row = session.get(Schedule, schedule_id)
    if row is None:
        raise NotFound("SCHED-026", f"schedule {schedule_id} not found")
    return row


def clinic_session(session: Session, session_id: int, *, for_update: bool = False) -> ClinicSession:
    row = session.get(ClinicSession, session_id, with_for_update=for_update or None)
    if row is None:
        raise NotFound("SCHED-027", f"session {session_id} not found")
    return row


def templates_of(session: Session, schedule_id: int) -> list[SessionTemplate]:
    return list(session.scalars(select(SessionTemplate).where(SessionTemplate.schedule_id == schedule_id)
                                .order_by(SessionTemplate.weekday, SessionTemplate.start_minute)))


@dataclass
class ScheduleView:
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
    practitioner_title: str | None
    equipment_id: int | None
    exam_kind: str | None
    reserve_ratio: float
    reserve_lead_days: int
    release_back_hours: int
    open_days_ahead: int
    release_minute: int
    channel_shares: dict
    active: bool
    version: int
    templates: list[SessionTemplate]


def schedule_views(session: Session, rows: list[Schedule], *, with_templates: bool = False) -> list[ScheduleView]:
    names = registry_queries.names_of(session, orgs=[s.org_id for s in rows],
                                      departments=[s.department_id for s in rows if s.department_id],
                                      practitioners=[s.practitioner_id for s in rows if s.practitioner_id])
    titles = registry_queries.practitioner_titles(session, [s.practitioner_id for s in rows if s.practitioner_id])
    return [ScheduleView(
        id=s.id, org_id=s.org_id, org_name=names["org"].get(s.org_id, ""), kind=s.kind, name=s.name,
        fee_class=s.fee_class, department_id=s.department_id,
        department_name=names["department"].get(s.department_id), practitioner_id=s.practitioner_id,
        practitioner_name=names["practitioner"].get(s.practitioner_id),
        practitioner_title=titles.get(s.practitioner_id), equipment_id=s.equipment_id, exam_kind=s.exam_kind,
        reserve_ratio=s.reserve_ratio, reserve_lead_days=s.reserve_lead_days,
        release_back_hours=s.release_back_hours, open_days_ahead=s.open_days_ahead,
        release_minute=s.release_minute, channel_shares=dict(s.channel_shares), active=s.active, version=s.version,
        templates=templates_of(session, s.id) if with_templates else []) for s in rows]


@dataclass
class SlotView:
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
    session_status: str
    released_back: bool
    public_release_at: datetime
    referral_open_at: datetime

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked) if self.session_status == "open" else 0


def slot_rows(session: Session, stmt) -> list[SlotView]:
    return [SlotView(id=sl.id, session_id=cs.id, schedule_id=cs.schedule_id, org_id=cs.org_id,
                     department_id=cs.department_id, practitioner_id=cs.practitioner_id, day=cs.day, part=cs.part,
                     starts_at=sl.starts_at, ends_at=sl.ends_at, pool=sl.pool, capacity=sl.capacity, booked=sl.booked,
                     session_status=cs.status, released_back=cs.released_back,
                     public_release_at=cs.public_release_at, referral_open_at=cs.referral_open_at)
            for sl, cs in session.execute(stmt)]


def slot_select():
    return select(Slot, ClinicSession).join(ClinicSession, ClinicSession.id == Slot.session_id)


def get_slot(session: Session, slot_id: int) -> SlotView:
    rows = slot_rows(session, slot_select().where(Slot.id == slot_id))
    if not rows:
        raise NotFound("SCHED-001", f"slot {slot_id} not found")
    return rows[0]


@dataclass
class SessionSummary:
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


def session_summaries(session: Session, sessions: list[ClinicSession]) -> list[SessionSummary]:
    if not sessions:
        return []
    ids = [s.id for s in sessions]
    per: dict[int, dict[str, tuple[int, int]]] = {}
    for sid, pool, cap, booked in session.execute(
            select(Slot.session_id, Slot.pool, func.sum(Slot.capacity), func.sum(Slot.booked))
            .where(Slot.session_id.in_(ids)).group_by(Slot.session_id, Slot.pool)):
        per.setdefault(sid, {})[pool] = (int(cap), int(booked))
    out = []
    for s in sessions:
        pools = per.get(s.id, {})
        out.append(SessionSummary(
            id=s.id, schedule_id=s.schedule_id, day=s.day, part=s.part, starts_at=s.starts_at, ends_at=s.ends_at,
            status=s.status, stop_reason=s.stop_reason, capacity=s.capacity,
            booked=sum(b for _c, b in pools.values()),
            free_by_pool={p: (c - b if s.status == "open" else 0) for p, (c, b) in pools.items()},
            public_release_at=s.public_release_at, released_back=s.released_back))
    return out


# -- for the referral context: the history its synth turns into referrals, and the use of the
# -- reserved places (预留号源) its measures report -------------------------------------------------

@dataclass(frozen=True)
class ReferralBooking:
    """A reserved place booked with a referral reference (no personal data but the patient id)."""

    id: int
    slot_id: int
    org_id: int
    department_id: int | None
    practitioner_id: int | None
    patient_id: int
    kind: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    updated_at: datetime
    status: str
    cancel_reason: str | None
    cancelled_at: datetime | None
    checked_in_at: datetime | None


def referral_bookings(conn) -> list[ReferralBooking]:
    """Every reserved-pool appointment booked with a referral reference, in id order (a
    Connection or a Session)."""
    a = Appointment
    rows = conn.execute(select(a.id, a.slot_id, a.org_id, a.department_id, a.practitioner_id, a.patient_id, a.kind,
                               a.starts_at, a.ends_at, a.created_at, a.updated_at, a.status, a.cancel_reason,
                               a.cancelled_at, a.checked_in_at)
                        .where(a.pool == "reserved", a.referral_ref.is_not(None)).order_by(a.id)).all()
    return [ReferralBooking(*r) for r in rows]


def reserved_use(session: Session, *, org_ids: Collection[int] | None, day_from: date,
                 day_to: date) -> dict[tuple[int, str], tuple[int, int]]:
    """{(org_id, "YYYY-MM"): (reserved places, places booked by a referral)} of the sessions
    held from ``day_from`` to ``day_to`` (local days, inclusive), by the month of the session.

    Places: the reserved pool's capacity of open sessions (a stopped session offered none).
    Booked by a referral: reserved-pool appointments with a referral reference that hold the
    place (all but the cancelled; a no-show held it). After the release-back hour the public
    may book unbooked reserved places: those bookings carry no referral reference and are
    not counted."""
    s, sl, a = ClinicSession, Slot, Appointment
    year, month = func.extract("year", s.day), func.extract("month", s.day)
    places = (select(s.org_id, year, month, func.sum(sl.capacity)).join(sl, sl.session_id == s.id)
              .where(sl.pool == "reserved", s.status == "open", s.day >= day_from, s.day <= day_to)
              .group_by(s.org_id, year, month))
    a_year, a_month = func.extract("year", a.day), func.extract("month", a.day)
    booked = (select(a.org_id, a_year, a_month, func.count())
              .where(a.pool == "reserved", a.referral_ref.is_not(None), a.status != "cancelled",
                     a.day >= day_from, a.day <= day_to).group_by(a.org_id, a_year, a_month))
    if org_ids is not None:
        places, booked = places.where(s.org_id.in_(list(org_ids))), booked.where(a.org_id.in_(list(org_ids)))
    out: dict[tuple[int, str], tuple[int, int]] = {}
    for org, y, m, n in session.execute(places):
        out[(org, f"{int(y):04d}-{int(m):02d}")] = (int(n or 0), 0)
    for org, y, m, n in session.execute(booked):
        key = (org, f"{int(y):04d}-{int(m):02d}")
        out[key] = (out.get(key, (0, 0))[0], int(n))
    return out
