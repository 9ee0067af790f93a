"""Centralised exam booking (集中式检查预约中心): several exam orders booked onto equipment
slots in one step — planned by ``exams.plan_exams`` (rules as data, fewest trips), then every
place taken in one transaction, all or none. If another booking takes a planned place in the
meantime, the plan is made again from what is free (up to three times).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..errors import Conflict
from ..patients import service as patients
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import exams, queries
from .models import Appointment, ClinicSession, ExamBooking, Schedule, Slot
from .queries import AppointmentView
from .service import _book, _check_patient_access, _owner, _request_hash, check_key, tz_of

ATTEMPTS = 3


@dataclass
class PlannedExam:
    code: str
    name: str
    slot_id: int
    day: date
    starts_at: datetime
    ends_at: datetime
    prep: str


@dataclass
class ExamPlanView:
    trips: int
    items: list[PlannedExam]
    instructions: list[str]


@dataclass
class ExamBookingOut:
    id: int
    trips: int
    appointments: list[AppointmentView]
    instructions: list[str]


def _candidates(session: Session, *, org_id: int, codes: list[str], channel: str, day_from: date, now: datetime
                ) -> dict[str, list[exams.Candidate]]:
    cat = exams.catalogue()
    out: dict[str, list[exams.Candidate]] = {}
    for code in codes:
        kind = cat.items[code].equipment
        stmt = (select(Slot, ClinicSession).join(ClinicSession, ClinicSession.id == Slot.session_id)
                .join(Schedule, Schedule.id == ClinicSession.schedule_id)
                .where(Schedule.org_id == org_id, Schedule.kind == "exam", Schedule.exam_kind == kind,
                       ClinicSession.status == "open", ClinicSession.day >= day_from,
                       ClinicSession.day < day_from + timedelta(days=exams.MAX_DAYS),
                       ClinicSession.public_release_at <= now, ClinicSession.starts_at > now,  # not once begun
                       Slot.booked < Slot.capacity,
                       (Slot.pool == channel) | ((Slot.pool == "reserved") & ClinicSession.released_back))
                .order_by(Slot.starts_at).limit(400))
        out[code] = [exams.Candidate(sl.id, cs.day, cs.part, sl.starts_at, sl.ends_at, kind, org_id)
                     for sl, cs in session.execute(stmt)]
    return out


def _lang(lang: str) -> int:
    return 1 if lang == "en" else 0


def plan_exam_booking(session: Session, actor: Actor, *, org_id: int, codes: list[str], channel: str = "window",
                      day_from: date | None = None, now: datetime | None = None, lang: str = "zh") -> ExamPlanView:
    """The plan the booking centre shows before it books (nothing is written)."""
    now = now or utcnow()
    cat = exams.catalogue()
    exams.check_items(cat, codes)
    with transaction(session):
        access.check(session, actor, Perm.APPOINTMENT_BOOK, AuditAction.SEARCH, resource_type="ExamPlan",
                     org_id=org_id, audit_success=False)
        day_from = day_from or now.astimezone(tz_of(session)).date()
        cands = _candidates(session, org_id=org_id, codes=codes, channel=channel, day_from=day_from, now=now)
        plan = exams.plan_exams(cat, codes, cands)
        if plan is None:
            raise Conflict("SCHED-022", "no plan honours the exam rules with the free places: "
                           + "; ".join(exams.unplannable_reasons(cat, codes, cands, _lang(lang))))
        return _plan_view(cat, plan, _lang(lang))


def _plan_view(cat: exams.Catalogue, plan: exams.Plan, lang: int) -> ExamPlanView:
    items = [PlannedExam(code, cat.items[code].name[lang], plan.assignments[code].slot_id,
                         plan.assignments[code].day, plan.assignments[code].starts_at,
                         plan.assignments[code].ends_at, cat.items[code].prep[lang]) for code in plan.order]
    return ExamPlanView(plan.trips, items, exams.instructions(cat, plan, lang))


def book_exams(session: Session, actor: Actor, *, patient_id: int, org_id: int, codes: list[str],
               channel: str = "window", day_from: date | None = None, idempotency_key: str | None = None,
               now: datetime | None = None) -> ExamBookingOut:
    """Plan and book every exam at once; all or none."""
    now = now or utcnow()
    cat = exams.catalogue()
    exams.check_items(cat, codes)
    key = check_key(idempotency_key)
    last: Conflict | None = None
    for attempt in range(ATTEMPTS):
        try:
            with transaction(session):
                if key is not None:
                    found = _replayed(session, actor, key, patient_id, org_id, codes)
                    if found is not None:
                        return found
                return _book_all(session, actor, cat, patient_id=patient_id, org_id=org_id, codes=codes,
                                 channel=channel, day_from=day_from, key=key, now=now)
        except Conflict as exc:
            if exc.code != "SCHED-002" or attempt == ATTEMPTS - 1:
                raise
            last = exc  # a planned place was taken meanwhile: plan again from what is free
    raise last  # pragma: no cover - the loop returns or raises


def _replayed(session: Session, actor: Actor, key: str, patient_id: int, org_id: int, codes: list[str]
              ) -> ExamBookingOut | None:
    first = session.scalar(select(Appointment).where(Appointment.idem_owner == _owner(actor),
                                                     Appointment.idempotency_key == f"{key}#0"))
    if first is None or first.exam_booking_id is None:
        return None
    if first.request_hash != _request_hash(exam_patient=patient_id, org=org_id, codes=sorted(codes), item=0):
        raise Conflict("SCHED-013", "this Idempotency-Key was used for a different booking")
    booking = session.get(ExamBooking, first.exam_booking_id)
    rows = list(session.scalars(select(Appointment).where(Appointment.exam_booking_id == booking.id)
                                .order_by(Appointment.starts_at)))
    views = queries.appointment_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))
    for v in views:
        v.replayed = True
    return ExamBookingOut(booking.id, booking.trips, views, (booking.instructions or "").splitlines())


def _book_all(session: Session, actor: Actor, cat: exams.Catalogue, *, patient_id: int, org_id: int,
              codes: list[str], channel: str, day_from: date | None, key: str | None, now: datetime
              ) -> ExamBookingOut:
    pid = patients.resolve_patient_id(session, patient_id)
    _check_patient_access(session, actor, AuditAction.CREATE, patient_id=pid, org_id=org_id)
    day_from = day_from or now.astimezone(tz_of(session)).date()
    cands = _candidates(session, org_id=org_id, codes=codes, channel=channel, day_from=day_from, now=now)
    plan = exams.plan_exams(cat, codes, cands)
    if plan is None:
        raise Conflict("SCHED-022", "no plan honours the exam rules with the free places: "
                       + "; ".join(exams.unplannable_reasons(cat, codes, cands)))
    zh, en = exams.instructions(cat, plan, 0), exams.instructions(cat, plan, 1)
    booking = ExamBooking(patient_id=pid, org_id=org_id, items=list(plan.order), trips=plan.trips,
                          booked_by=actor.username, instructions="\n".join(zh))
    session.add(booking)
    session.flush()
    rows = []
    # Places are taken in slot-id order, so two bookings of overlapping exams lock the same
    # rows in the same order and cannot deadlock; the key suffix follows the plan's order.
    for i, code in sorted(enumerate(plan.order), key=lambda ic: plan.assignments[ic[1]].slot_id):
        rows.append(_book(session, actor, slot_id=plan.assignments[code].slot_id, patient_id=pid, channel=channel,
                          key=f"{key}#{i}" if key else None,
                          digest=_request_hash(exam_patient=patient_id, org=org_id, codes=sorted(codes), item=i),
                          referral_ref=None, now=now, exam_code=code, exam_booking_id=booking.id, checked=True))
    outbox.publish(session, "scheduling.exams_booked", {"exam_booking_id": booking.id, "patient_id": pid,
                                                        "instructions": {"zh": zh, "en": en}})
    rows.sort(key=lambda a: a.starts_at)
    views = queries.appointment_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))
    return ExamBookingOut(booking.id, plan.trips, views, zh)
