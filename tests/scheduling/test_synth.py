"""Scheduling's share of the synthetic region: schedules, sessions laid out as the service
lays them out, a history whose counters agree with its appointments and whose behaviour is
in the intended bands, and future places the real service books."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session
from tests.conftest import SESSION_INFO
from tests.factories import SYS

from healthgrid.db import make_engine, utcnow
from healthgrid.scheduling import schedules, service
from healthgrid.scheduling import synth as scheduling_synth
from healthgrid.scheduling.models import Appointment, ClinicSession, Schedule, Slot
from healthgrid.security import service as security_service

NOT_CANCELLED = Appointment.status != "cancelled"


@pytest.fixture
def region_write(region_url) -> Iterator[Session]:
    """A session on the generated region whose changes are rolled back at the end."""
    engine = make_engine(region_url)
    conn = engine.connect()
    outer = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                info=dict(SESSION_INFO))
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        conn.close()
        engine.dispose()


def _today(session: Session):
    return service.local_day(session, utcnow())


def _history_snapshot(conn, first_id: int) -> tuple[list, list]:
    scheds = conn.execute(select(Schedule.name, Schedule.fee_class, Schedule.kind).where(Schedule.id > first_id)
                          .order_by(Schedule.id)).all()
    appts = conn.execute(select(Appointment.patient_id, Appointment.status, Appointment.channel,
                                Appointment.starts_at, Appointment.created_at)
                         .join(Schedule, Schedule.id == Appointment.schedule_id).where(Schedule.id > first_id)
                         .order_by(Appointment.id)).all()
    return scheds, appts


def test_same_seed_gives_the_same_schedules_and_history_and_another_seed_another(region_url):
    engine = make_engine(region_url)
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    snapshots = []
    try:
        for seed in (3, 3, 4):
            with engine.connect() as conn:
                outer = conn.begin()
                first = conn.scalar(select(func.max(Schedule.id))) or 0
                counts = scheduling_synth.generate(conn, size="tiny", seed=seed, info=SESSION_INFO, now=now)
                snapshots.append((counts, _history_snapshot(conn, first)))
                outer.rollback()
    finally:
        engine.dispose()
    (a, b, c) = snapshots
    assert a == b
    assert a[1][1] and a != c
    assert a[0]["sched_appointments"] == len(a[1][1])


def test_every_slot_counts_exactly_the_appointments_holding_it(region_session):
    held = (select(Appointment.slot_id, func.count().label("n")).where(NOT_CANCELLED)
            .group_by(Appointment.slot_id).subquery())
    wrong = region_session.execute(
        select(Slot.id, Slot.booked, held.c.n).outerjoin(held, held.c.slot_id == Slot.id)
        .where(Slot.booked != func.coalesce(held.c.n, 0)).limit(5)).all()
    assert wrong == []
    assert region_session.scalar(select(func.count()).where(Slot.booked > Slot.capacity)) == 0
    assert region_session.scalar(select(func.count()).select_from(Appointment)) > 1000


def test_no_patient_has_two_live_clinic_appointments_in_one_department_on_one_day(region_session):
    live = Appointment.status.in_(["proposed", "booked", "arrived", "fulfilled"])
    doubles = region_session.execute(
        select(Appointment.patient_id, Appointment.department_id, Appointment.day, func.count())
        .where(Appointment.kind == "clinic", live)
        .group_by(Appointment.patient_id, Appointment.department_id, Appointment.day)
        .having(func.count() > 1).limit(5)).all()
    assert doubles == []


def test_sessions_split_their_capacity_into_slots_and_stopped_ones_hold_nobody(region_session):
    by_session = (select(Slot.session_id, func.sum(Slot.capacity).label("places"), func.sum(Slot.booked)
                         .label("booked")).group_by(Slot.session_id).subquery())
    mismatched = region_session.scalar(select(func.count()).select_from(ClinicSession).join(
        by_session, by_session.c.session_id == ClinicSession.id).where(by_session.c.places != ClinicSession.capacity))
    assert mismatched == 0
    stopped = region_session.execute(select(ClinicSession.id, by_session.c.booked).join(
        by_session, by_session.c.session_id == ClinicSession.id).where(ClinicSession.status == "stopped")).all()
    assert all(booked == 0 for _, booked in stopped)


def _rate(session: Session, numerator, denominator, *where) -> float:
    row = session.execute(select(func.sum(case((numerator, 1), else_=0)), func.sum(case((denominator, 1), else_=0)))
                          .select_from(Appointment).where(*where)).one()
    return row[0] / row[1]


def test_no_shows_and_cancellations_are_in_the_intended_bands(region_session):
    s = region_session
    attended_or_not = Appointment.status.in_(["fulfilled", "noshow"])
    noshow = Appointment.status == "noshow"
    assert 0.05 <= _rate(s, noshow, attended_or_not) <= 0.10
    assert 0.07 <= _rate(s, Appointment.status == "cancelled", Appointment.id.is_not(None)) <= 0.13
    # more no-shows for general clinics than expert ones, for the web than the window
    general = _rate(s, noshow, attended_or_not, Appointment.fee_class == "general", Appointment.kind == "clinic")
    expert = _rate(s, noshow, attended_or_not, Appointment.fee_class != "general")
    assert general > expert
    assert _rate(s, noshow, attended_or_not, Appointment.channel == "web", Appointment.referral_ref.is_(None)) \
        > 2 * _rate(s, noshow, attended_or_not, Appointment.channel == "window")


def _fill(session: Session, *where) -> float:
    places = session.scalar(select(func.sum(ClinicSession.capacity)).join(Schedule, Schedule.id ==
                                                                           ClinicSession.schedule_id)
                            .where(ClinicSession.day < _today(session), ClinicSession.status == "open", *where))
    held = session.scalar(select(func.count()).select_from(Appointment)
                          .join(Schedule, Schedule.id == Appointment.schedule_id)
                          .join(ClinicSession, ClinicSession.id == Appointment.session_id)
                          .where(ClinicSession.day < _today(session), ClinicSession.status == "open", NOT_CANCELLED,
                                 *where))
    return held / places


def test_expert_clinics_and_mondays_fill_up_more(region_session):
    s = region_session
    assert _fill(s, Schedule.fee_class != "general") > 1.3 * _fill(s, Schedule.fee_class == "general")
    weekday = func.extract("dow", ClinicSession.day) if s.get_bind().dialect.name == "postgresql" \
        else cast(func.strftime("%w", ClinicSession.day), Integer)
    assert _fill(s, weekday == 1, Schedule.kind == "clinic") > _fill(s, weekday == 5, Schedule.kind == "clinic")


def test_future_sessions_are_laid_out_as_the_service_opens_them(region_write):
    s = region_write
    today = _today(s)
    # the horizon is complete: the worker's daily job finds nothing to open
    assert schedules.open_sessions(s, SYS, today=today) == 0
    sched = s.scalar(select(Schedule).where(Schedule.kind == "clinic").order_by(Schedule.id))
    mine = s.scalar(select(ClinicSession).where(ClinicSession.schedule_id == sched.id, ClinicSession.day >= today)
                    .order_by(ClinicSession.day))
    later = timedelta(days=56)  # eight weeks on, the same weekday, beyond the generated horizon
    assert schedules.open_sessions(s, SYS, today=today + later, schedule_ids=[sched.id]) > 0
    theirs = s.scalar(select(ClinicSession).where(ClinicSession.schedule_id == sched.id,
                                                  ClinicSession.part == mine.part,
                                                  ClinicSession.day == mine.day + later))
    assert theirs is not None

    def shape(cs: ClinicSession):
        slots = s.execute(select(Slot.starts_at, Slot.ends_at, Slot.pool, Slot.capacity)
                          .where(Slot.session_id == cs.id).order_by(Slot.id)).all()
        return ([(a - cs.starts_at, b - cs.starts_at, pool, n) for a, b, pool, n in slots],
                cs.capacity, cs.ends_at - cs.starts_at, cs.starts_at - cs.public_release_at,
                cs.public_release_at - cs.referral_open_at, cs.starts_at - cs.release_back_at)

    assert shape(mine) == shape(theirs)


def test_the_demo_resident_books_a_future_place_for_themself(region_write):
    s = region_write
    user = security_service.user_by_name(s, "demo-resident")
    actor = security_service.actor_for(s, user, surface="web", client=None, mfa=True)
    own = service.own_patient_ids(s, actor)
    assert own and scheduling_synth.register_demo_resident(s, seed=7) == own[0]
    # the synthetic history only: browser tests on this shared region book for the demo resident too
    history = s.scalars(select(Appointment.status).where(Appointment.patient_id == own[0],
                                                         Appointment.booked_by == "system:synth")).all()
    assert history and set(history) <= {"fulfilled", "cancelled"}
    now = utcnow()
    # the browser tests on this shared region may have booked the resident into a department
    # on that day already (one a day per department): the next place of another department then
    mine = {(a.department_id, a.day) for a in service.my_appointments(s, actor) if a.status == "booked"}
    slot = next(x for x in service.find_slots(s, actor, service.SlotQuery(kind="clinic", pool="web",
                                                                         day_from=_today(s) + timedelta(days=1)),
                                              now=now)
                if x.public_release_at <= now and x.pool == "web" and (x.department_id, x.day) not in mine)
    appt = service.book_appointment(s, actor, slot_id=slot.id, patient_id=own[0], channel="web",
                                    idempotency_key="synth-demo-1", now=now)
    assert appt.status == "booked"
    assert s.scalar(select(Slot.booked).where(Slot.id == slot.id)) == slot.booked + 1


def test_exam_rooms_have_bookable_places_for_every_kind_the_catalogue_books(region_write):
    s = region_write
    now = utcnow()
    kinds = set(s.scalars(select(Schedule.exam_kind).where(Schedule.kind == "exam")))
    assert {"CT", "US", "MRI", "DR"} <= kinds
    missed = select(Appointment.patient_id).where(Appointment.status == "noshow")
    patient = s.scalar(select(Appointment.patient_id).where(Appointment.status == "fulfilled",
                                                            Appointment.patient_id.not_in(missed))
                       .order_by(Appointment.id))
    slot = next(x for x in service.find_slots(s, SYS, service.SlotQuery(exam_kind="CT", pool="window",
                                                                      day_from=_today(s) + timedelta(days=1)),
                                              now=now) if x.public_release_at <= now)
    appt = service.book_appointment(s, SYS, slot_id=slot.id, patient_id=patient, channel="window", now=now)
    assert appt.status == "booked"
    history = s.execute(select(func.count()).select_from(Appointment).where(
        and_(Appointment.kind == "exam", Appointment.exam_code.is_not(None)))).scalar()
    assert history > 0
