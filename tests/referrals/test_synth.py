"""Referrals' share of the synthetic region (the tiny region, seed 7): every referral booking
of the scheduling history is a referral whose code the booking carries; statuses, times,
events and follow-up tasks agree with each other and with the appointments; the same seed
gives the same referrals; and the measures have something to say about them."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from tests.conftest import SESSION_INFO

from healthgrid.db import make_engine, utcnow
from healthgrid.referrals import domain as d
from healthgrid.referrals import measures
from healthgrid.referrals import synth as referrals_synth
from healthgrid.referrals.models import FollowUpTask, Referral, ReferralEvent
from healthgrid.registry.models import Division, Organization
from healthgrid.scheduling.models import Appointment
from healthgrid.security.domain import Actor

S = d.Status
# The order a referral's times follow along its way (a subset is set on each).
CHAIN = ("created_at", "submitted_at", "accepted_at", "scheduled_at", "arrived_at", "in_care_at", "completed_at",
         "back_referred_at", "received_by_primary_at", "followed_up_at", "closed_at")


def _referrals(s) -> list[Referral]:
    """The synth's referrals (the region database is shared: other tests add their own)."""
    return list(s.scalars(select(Referral).where(Referral.created_by == referrals_synth.SYNTH_USER)
                          .order_by(Referral.id)))


def test_every_referral_booking_is_a_referral_whose_code_it_carries(region_session):
    s = region_session
    bookings = s.execute(select(Appointment.id, Appointment.referral_ref, Appointment.patient_id, Appointment.org_id,
                                Appointment.department_id, Appointment.starts_at)
                         .where(Appointment.pool == "reserved", Appointment.referral_ref.is_not(None),
                                Appointment.booked_by == referrals_synth.SYNTH_USER)).all()
    by_appointment = {r.appointment_id: r for r in _referrals(s) if r.appointment_id is not None}
    assert len(bookings) > 100
    for appt_id, ref, patient, org, dept, starts in bookings:
        r = by_appointment[appt_id]
        assert ref == d.ref_code(r.id)
        assert (r.patient_id, r.to_org_id, r.to_department_id, r.scheduled_for) == (patient, org, dept, starts)
        assert r.direction == "up" and r.urgency in ("routine", "urgent")
    assert len(by_appointment) == len(bookings)


def test_statuses_agree_with_the_times_and_the_appointments(region_session):
    s = region_session
    states = dict(s.execute(select(Appointment.id, Appointment.status)).all())
    follows = {"noshow": {S.NO_SHOW}, "cancelled": {S.CANCELLED}, "booked": {S.SCHEDULED},
               "fulfilled": {S.ARRIVED, S.IN_CARE, S.COMPLETED, S.BACK_REFERRED, S.RECEIVED_BY_PRIMARY,
                             S.FOLLOWED_UP, S.CLOSED}}
    now = utcnow()
    for r in _referrals(s):
        assert getattr(r, d.STAMP[S(r.status)]) is not None, (r.id, r.status)
        times = [getattr(r, name) for name in CHAIN if getattr(r, name) is not None]
        assert times == sorted(times) and times[-1] <= now, r.id
        if r.appointment_id is not None:
            assert S(r.status) in follows[states[r.appointment_id]], (r.id, r.status)
        if r.accepted_at is not None and r.urgency != "emergency":
            assert r.accepted_at <= r.accept_due_at  # later ones were expired by the SLA job
        if r.status == S.EXPIRED:
            assert r.escalated_to_org_id is not None and r.expired_at > r.accept_due_at
        if r.status == S.REJECTED:
            assert r.reject_reason
        if r.status == S.CANCELLED:
            assert r.cancel_reason
        if r.urgency == "emergency" and r.accepted_at is not None:
            assert r.accepted_at == r.submitted_at and r.appointment_id is None


def test_events_replay_the_state_machine_and_tasks_follow_the_back_referrals(region_session):
    s = region_session
    events: dict[int, list[ReferralEvent]] = defaultdict(list)
    for e in s.scalars(select(ReferralEvent).order_by(ReferralEvent.id)):
        events[e.referral_id].append(e)
    tasks = {t.referral_id: t for t in s.scalars(select(FollowUpTask))}
    for r in _referrals(s):
        moves = [e for e in events[r.id] if e.from_status != e.to_status]  # an escalation is a note
        assert (moves[0].from_status, moves[0].to_status, moves[0].at) == (None, "draft", r.created_at)
        for e in moves[1:]:
            d.check_transition(e.from_status, e.to_status)
            assert e.at == getattr(r, d.STAMP[S(e.to_status)])
        assert moves[-1].to_status == r.status
        task = tasks.get(r.id)
        assert (task is not None) == (r.back_referred_at is not None), r.id
        if task is not None:
            assert task.due_at == r.back_referred_at + timedelta(days=14)
            assert task.done_at == r.followed_up_at and task.org_id == r.back_to_org_id == r.from_org_id
    assert s.scalar(select(func.count()).select_from(ReferralEvent).where(ReferralEvent.referral_id.not_in(
        select(Referral.id)))) == 0


def test_the_region_has_every_kind_of_referral(region_session):
    rows = _referrals(region_session)
    kinds = Counter((r.direction, r.urgency if r.urgency == "emergency" else "", r.status) for r in rows)
    statuses = {status for _d, _u, status in kinds}
    assert {"no_show", "cancelled", "rejected", "expired", "back_referred", "followed_up", "closed"} <= statuses
    assert any(k[1] == "emergency" for k in kinds) and any(k[0] == "down" for k in kinds)
    # Senders are below their receivers; those sent to a county hospital mostly stay in its
    # 医共体 (the city hospitals lead no alliance of primary care: REF-C02 warns there).
    assert all(not any(f["rule"] == "REF-C01" for f in r.findings) for r in rows)
    county_level = set(region_session.scalars(select(Organization.id).where(Organization.level == "L2")))
    to_county = [r for r in rows if r.direction == "up" and r.to_org_id in county_level]
    assert sum(1 for r in to_county if not any(f["rule"] == "REF-C02" for f in r.findings)) > len(to_county) / 2


def test_same_seed_gives_the_same_referrals_and_another_seed_others(region_url):
    engine = make_engine(region_url)
    snapshots = []
    try:
        with engine.connect() as conn:
            now = conn.scalar(select(func.max(Appointment.updated_at))) + timedelta(hours=1)
        for seed in (3, 3, 4):
            with engine.connect() as conn:
                outer = conn.begin()
                first = conn.scalar(select(func.max(Referral.id)))
                counts = referrals_synth.generate(conn, size="tiny", seed=seed, info=SESSION_INFO, now=now)
                rows = conn.execute(select(Referral.direction, Referral.urgency, Referral.status, Referral.patient_id,
                                           Referral.from_org_id, Referral.to_org_id, Referral.submitted_at,
                                           Referral.closed_at).where(Referral.id > first)
                                    .order_by(Referral.id)).all()
                snapshots.append((counts, rows))
                outer.rollback()
    finally:
        engine.dispose()
    a, b, c = snapshots
    assert a == b and a[1] and a != c
    assert a[0]["ref_referrals"] == len(a[1])


def test_the_measures_have_something_to_say_about_the_region(region_session):
    s = region_session
    # The measures audit their search (a write): end this long-lived reader's snapshot first,
    # or SQLite refuses to upgrade a snapshot that the live server has written past.
    s.rollback()
    first = s.scalar(select(func.min(Referral.submitted_at)))
    today = datetime.now(UTC).date()
    result = measures.referral_measures(s, Actor.system_actor("tests"), since=first.date(), until=today)
    t = result.total
    assert t.up_sent > 100 and t.down_sent > 20 and t.up_sent == t.up_received
    assert 0.3 < t.accept_median_hours < 8 and t.accept_median_hours < t.accept_p90_hours < 24
    assert 0.05 < t.utilisation < 1 and 0 < t.no_show_rate < 0.2 and 0.5 < t.followup_share < 1
    assert len(result.facilities) > 5 and len(result.monthly) >= 3
    county = s.scalar(select(Division.id).where(Division.level == "county").order_by(Division.id))
    mine = measures.referral_measures(s, Actor.system_actor("tests"), division_id=county, since=first.date(),
                                      until=today)
    assert 0 < mine.total.up_sent + mine.total.up_received <= t.up_sent + t.up_received
    assert isinstance(result.since, date)
