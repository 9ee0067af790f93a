"""Booking use cases on both databases: every rule of the issue, each refusal coded and
changing nothing. (Races between many sessions: test_race.py; a killed server: test_crash.py.)"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from tests.conftest import make_settings
from tests.factories import SYS, resident_id
from tests.scheduling.conftest import NOW, TODAY, make_clinic, tomorrow_slots

from healthgrid.errors import Conflict, Forbidden, Invalid
from healthgrid.jobs import HANDLERS
from healthgrid.notifications import service as notifications
from healthgrid.outbox import deliver_pending
from healthgrid.referrals import service as referrals
from healthgrid.registry import service as registry
from healthgrid.scheduling import exam_booking, schedules, service
from healthgrid.scheduling import jobs as sched_jobs
from healthgrid.scheduling.models import Appointment, Slot
from healthgrid.security import ALL_SETTINGS_KEY
from healthgrid.security import service as security
from healthgrid.security.domain import Actor

TOMORROW = TODAY + timedelta(days=1)


def _settings(session, **scheduling):
    session.info[ALL_SETTINGS_KEY] = make_settings(data_dir=".", scheduling=scheduling)


def _book(session, slot, patient, *, actor=SYS, channel=None, **kw):
    return service.book_appointment(session, actor, slot_id=slot.id, patient_id=patient.id,
                                    channel=channel or slot.pool, now=kw.pop("now", NOW), **kw)


def _counts(session):
    return (session.scalar(select(func.count()).select_from(Appointment)),
            session.scalar(select(func.sum(Slot.booked))))


def _resident(session, clinic, patient_index: int = 0, username: str = "resident-wang") -> Actor:
    """A resident's own account, real-name: the ID number of a registered patient."""
    born = date(1960 + patient_index, 1, 2)
    number = resident_id(born, seq=101 + patient_index * 2 + (patient_index % 2))
    user = security.create_user(session, SYS, username=username, display_name="王建国", password="Resident-pass-1",
                                grants=[security.parse_grant("resident", "self", None)], id_number=number)
    return security.actor_for(session, user, surface="api", client=None, mfa=False)


def _staff(session, org_id: int, role: str = "nurse", username: str = "nurse-1") -> Actor:
    user = security.create_user(session, SYS, username=username, display_name="护士", password="Nurse-pass-123",
                                grants=[security.parse_grant(role, "organization", org_id)], org_id=org_id)
    return security.actor_for(session, user, surface="api", client=None, mfa=True)


# -- places and the conditional update ------------------------------------------------------------

def test_booking_takes_a_place_and_publishes_the_confirmation(session, clinic):
    slot = tomorrow_slots(session, clinic)[0]
    appt = _book(session, slot, clinic.patients[0])
    assert appt.status == "booked" and appt.fee_class == "expert" and appt.day == TOMORROW
    assert session.get(Slot, slot.id).booked == 1
    deliver_pending(session, HANDLERS)
    titles = [m.title["zh"] for m in notifications.messages_to(session, "patient", clinic.patients[0].id)]
    assert titles == ["预约成功"]


def test_last_slot_cannot_be_double_booked(session, clinic):
    slot = tomorrow_slots(session, clinic)[0]
    assert slot.capacity == 1
    _book(session, slot, clinic.patients[0])
    before = _counts(session)
    with pytest.raises(Conflict) as err:
        _book(session, slot, clinic.patients[1])
    assert err.value.code == "SCHED-002"
    assert _counts(session) == before


def test_retry_with_the_same_idempotency_key_books_once(session, clinic):
    slot = tomorrow_slots(session, clinic)[0]
    first = _book(session, slot, clinic.patients[0], idempotency_key="abc-1")
    again = _book(session, slot, clinic.patients[0], idempotency_key="abc-1")
    assert again.id == first.id and again.replayed and not first.replayed
    assert session.get(Slot, slot.id).booked == 1
    with pytest.raises(Conflict) as err:  # the same key for another request
        _book(session, slot, clinic.patients[1], idempotency_key="abc-1")
    assert err.value.code == "SCHED-013"


def test_one_appointment_per_department_and_day(session):
    clinic = make_clinic(session, per_slot=3)
    slots = tomorrow_slots(session, clinic)
    _book(session, slots[0], clinic.patients[0])
    before = _counts(session)
    with pytest.raises(Conflict) as err:
        _book(session, slots[-1], clinic.patients[0])
    assert err.value.code == "SCHED-008" and _counts(session) == before
    # another day is fine
    _book(session, tomorrow_slots(session, clinic, day=TODAY + timedelta(days=2))[0], clinic.patients[0])


def test_pending_appointments_are_capped(session, clinic):
    _settings(session, max_pending=2)
    for offset in (1, 2):
        _book(session, tomorrow_slots(session, clinic, day=TODAY + timedelta(days=offset))[0], clinic.patients[0])
    with pytest.raises(Conflict) as err:
        _book(session, tomorrow_slots(session, clinic, day=TODAY + timedelta(days=3))[0], clinic.patients[0])
    assert err.value.code == "SCHED-009"


def test_no_shows_suspend_booking_within_the_window(session, clinic):
    _settings(session, noshow_limit=1, noshow_window_days=90)
    appt = _book(session, tomorrow_slots(session, clinic)[0], clinic.patients[0])
    assert sched_jobs.mark_no_shows(session, NOW + timedelta(days=2)) == 1
    assert service.get_appointment(session, SYS, appt.id).status == "noshow"
    with pytest.raises(Conflict) as err:
        _book(session, tomorrow_slots(session, clinic, day=TODAY + timedelta(days=3))[0], clinic.patients[0],
              now=NOW + timedelta(days=2))
    assert err.value.code == "SCHED-010"


def test_public_places_open_at_the_release_hour(session):
    clinic = make_clinic(session, open_days_ahead=1)
    later = service.find_slots(session, SYS, service.SlotQuery(schedule_id=clinic.schedule.id, pool="web",
                                                                day_from=TODAY + timedelta(days=3)), now=NOW)[0]
    with pytest.raises(Conflict) as err:
        _book(session, later, clinic.patients[0])
    assert err.value.code == "SCHED-003" and "opens_at" in err.value.detail


# -- reserved places (预留号源) --------------------------------------------------------------------

def test_reserved_places_need_a_referral_from_a_referrer_in_the_alliance(session, clinic):
    reserved = tomorrow_slots(session, clinic, pool="reserved")[0]
    with pytest.raises(Conflict) as err:
        _book(session, reserved, clinic.patients[0], channel="phone")
    assert err.value.code == "SCHED-005"
    township_nurse = _staff(session, clinic.region.township_centre.id)
    # A free-text reference is not a referral (§3.6: a submitted or accepted one).
    with pytest.raises(Conflict) as err:
        _book(session, reserved, clinic.patients[0], actor=township_nurse, channel="phone", referral_ref="REF-1")
    assert err.value.code == "SCHED-005"
    sent = referrals.create_referral(session, SYS, referrals.ReferralIn(
        patient_id=clinic.patients[0].id, from_org_id=clinic.region.township_centre.id,
        to_org_id=clinic.region.county_hospital.id, to_department_id=clinic.department_id,
        diagnoses=[{"code": "I10", "name": "原发性高血压"}]), now=NOW)
    appt = _book(session, reserved, clinic.patients[0], actor=township_nurse, channel="phone", referral_ref=sent.code)
    assert appt.pool == "reserved" and appt.referral_ref == sent.code
    with pytest.raises(Conflict) as err:  # the referral is another patient's
        _book(session, tomorrow_slots(session, clinic, pool="reserved", day=TODAY + timedelta(days=3))[0],
              clinic.patients[1], actor=township_nurse, channel="phone", referral_ref=sent.code)
    assert err.value.code == "SCHED-005"
    outsider_org = registry.create_organization(session, SYS, code="91-OUT", name="外县卫生院", level="L1",
                                                org_type="township_health_centre",
                                                division_code=clinic.region.township.code)
    outsider = _staff(session, outsider_org.id, role="clinician", username="doc-out")
    other = tomorrow_slots(session, clinic, pool="reserved", day=TODAY + timedelta(days=2))[0]
    with pytest.raises(Forbidden) as err:
        _book(session, other, clinic.patients[1], actor=outsider, channel="phone", referral_ref="REF-2")
    assert err.value.code in ("SCHED-006", "SEC-104")


def test_unbooked_reserved_places_return_to_the_public_before_the_session(session, clinic):
    reserved = tomorrow_slots(session, clinic, pool="reserved")[0]
    # 48 h before tomorrow 08:00 has passed at NOW (today 09:00): the job releases it
    assert sched_jobs.release_back(session, NOW) >= 1
    web_view = tomorrow_slots(session, clinic, pool="web")
    assert reserved.id in {s.id for s in web_view}
    appt = _book(session, reserved, clinic.patients[2], channel="web")
    assert appt.pool == "reserved" and appt.channel == "web"


# -- residents, family members, cancellation -------------------------------------------------------

def test_a_resident_books_for_self_and_for_a_registered_family_member(session, clinic):
    me = _resident(session, clinic)
    slots = tomorrow_slots(session, clinic)
    mine = service.book_appointment(session, me, slot_id=slots[0].id, patient_id=clinic.patients[0].id,
                                    channel="web", now=NOW)
    assert mine.patient_id == clinic.patients[0].id
    stranger_slot = tomorrow_slots(session, clinic, day=TODAY + timedelta(days=2))[0]
    with pytest.raises(Forbidden):
        service.book_appointment(session, me, slot_id=stranger_slot.id, patient_id=clinic.patients[1].id,
                                 channel="web", now=NOW)
    with pytest.raises(Invalid) as err:  # real-name check: the name must match the ID number
        service.add_proxy(session, me, name="李某", id_number=resident_id(date(1961, 1, 2), seq=104),
                          relationship="spouse")
    assert err.value.code == "SCHED-024"
    proxy = service.add_proxy(session, me, name="李秀英", id_number=resident_id(date(1961, 1, 2), seq=104),
                              relationship="spouse")
    theirs = service.book_appointment(session, me, slot_id=stranger_slot.id, patient_id=proxy.patient_id,
                                      channel="web", now=NOW)
    assert {a.id for a in service.my_appointments(session, me)} == {mine.id, theirs.id}
    with pytest.raises(Forbidden) as err:  # residents book through web/app or a kiosk
        service.book_appointment(session, me, slot_id=slots[-1].id, patient_id=clinic.patients[0].id,
                                 channel="window", now=NOW)
    assert err.value.code == "SCHED-007"


def test_residents_cancel_only_until_the_deadline(session, clinic):
    _settings(session, cancel_before_hours=2)
    me = _resident(session, clinic)
    slot = tomorrow_slots(session, clinic)[0]
    appt = service.book_appointment(session, me, slot_id=slot.id, patient_id=clinic.patients[0].id,
                                    channel="web", now=NOW)
    late = slot.starts_at - timedelta(hours=1)
    with pytest.raises(Conflict) as err:
        service.cancel_appointment(session, me, appt.id, reason="有事", now=late)
    assert err.value.code == "SCHED-011" and session.get(Slot, slot.id).booked == 1
    with pytest.raises(Invalid):
        service.cancel_appointment(session, me, appt.id, reason=" ", now=NOW)
    done = service.cancel_appointment(session, me, appt.id, reason="有事", now=NOW)
    assert done.status == "cancelled" and session.get(Slot, slot.id).booked == 0
    with pytest.raises(Conflict) as err:
        service.cancel_appointment(session, me, appt.id, reason="again", now=NOW)
    assert err.value.code == "SCHED-012"


# -- waitlist ----------------------------------------------------------------------------------------

def test_a_freed_place_is_offered_to_the_first_on_the_waitlist(session):
    clinic = make_clinic(session, channel_shares={"web": 1.0})
    for slot, patient in zip(tomorrow_slots(session, clinic), clinic.patients, strict=False):
        last = _book(session, slot, patient)
    session_id = last.session_id
    with pytest.raises(Conflict) as err:  # joining is for full sessions only
        service.join_waitlist(session, SYS, session_id=tomorrow_slots(session, clinic, day=TODAY + timedelta(3))[0]
                              .session_id, patient_id=clinic.patients[2].id, channel="web", now=NOW)
    assert err.value.code == "SCHED-018"
    entry = service.join_waitlist(session, SYS, session_id=session_id, patient_id=clinic.patients[2].id,
                                  channel="web", now=NOW)
    assert entry.position == 1
    service.cancel_appointment(session, SYS, last.id, reason="改期", now=NOW)
    offered = service.search_appointments(session, SYS, service.AppointmentQuery(patient_id=clinic.patients[2].id))
    assert [a.status for a in offered] == ["proposed"] and offered[0].offer_expires_at is not None
    booked = service.accept_offer(session, SYS, offered[0].id, now=NOW)
    assert booked.status == "booked"
    deliver_pending(session, HANDLERS)
    topics = [m.topic for m in notifications.messages_to(session, "patient", clinic.patients[2].id)]
    assert "scheduling.waitlist_offered" in topics


def test_an_expired_offer_goes_to_the_next_in_line(session):
    clinic = make_clinic(session, channel_shares={"web": 1.0}, patients=4)
    slots = tomorrow_slots(session, clinic)
    appts = [_book(session, s, p) for s, p in zip(slots, clinic.patients[:2], strict=True)]
    for p in clinic.patients[2:4]:
        service.join_waitlist(session, SYS, session_id=appts[0].session_id, patient_id=p.id, channel="web", now=NOW)
    service.cancel_appointment(session, SYS, appts[0].id, reason="改期", now=NOW)
    assert sched_jobs.expire_offers(session, NOW + timedelta(hours=2)) == 1
    second = service.search_appointments(session, SYS, service.AppointmentQuery(patient_id=clinic.patients[3].id))
    assert [a.status for a in second] == ["proposed"]


# -- the day: check-in, day list, stop clinic, reminders ----------------------------------------------

def test_check_in_on_the_day_then_seen_and_the_day_list_numbers_patients(session):
    clinic = make_clinic(session, per_slot=2)
    slots = tomorrow_slots(session, clinic)
    appts = [_book(session, s, p) for s, p in zip(slots[:2], clinic.patients[:2], strict=True)]
    with pytest.raises(Conflict) as err:
        service.check_in(session, SYS, appts[0].id, now=NOW)  # the day before
    assert err.value.code == "SCHED-021"
    on_the_day = slots[0].starts_at - timedelta(minutes=20)
    assert service.check_in(session, SYS, appts[0].id, now=on_the_day).status == "arrived"
    assert service.complete_appointment(session, SYS, appts[0].id).status == "fulfilled"
    listed = service.day_list(session, SYS, day=TOMORROW, practitioner_id=clinic.region.doctor.id)
    assert [e.number for e in listed] == [1, 2]
    assert [e.appointment.status for e in listed] == ["fulfilled", "booked"]


def test_stop_clinic_cancels_notifies_and_offers_other_times(session, clinic):
    slot = tomorrow_slots(session, clinic)[0]
    appt = _book(session, slot, clinic.patients[0])
    with pytest.raises(Invalid):
        schedules.add_closure(session, SYS, org_id=clinic.region.county_hospital.id, day=TOMORROW, kind="stop",
                              reason="x", schedule_id=clinic.schedule.id, now=NOW)
    out = schedules.add_closure(session, SYS, org_id=clinic.region.county_hospital.id, day=TOMORROW, kind="stop",
                                reason="医生外出会诊", schedule_id=clinic.schedule.id, now=NOW)
    assert out.stopped_sessions == 1 and out.cancelled_appointments == 1
    assert service.get_appointment(session, SYS, appt.id).status == "cancelled"
    with pytest.raises(Conflict) as err:
        _book(session, slot, clinic.patients[1])
    assert err.value.code == "SCHED-004"
    deliver_pending(session, HANDLERS)
    body = notifications.messages_to(session, "patient", clinic.patients[0].id)[-1].body["zh"]
    assert "停诊" in body or "医生外出会诊" in body
    assert "可改约" in body
    options = service.rebooking_choices(session, SYS, appt.id, now=NOW)
    assert options and all(o.department_id == clinic.department_id and o.day > TOMORROW for o in options)
    moved = service.rebook_appointment(session, SYS, appt.id, slot_id=options[0].id, idempotency_key="rb-1",
                                       now=NOW)
    assert moved.status == "booked" and moved.patient_id == clinic.patients[0].id and moved.channel == "web"
    again = service.rebook_appointment(session, SYS, appt.id, slot_id=options[0].id, idempotency_key="rb-1",
                                       now=NOW)
    assert again.id == moved.id and again.replayed
    with pytest.raises(Conflict) as err:  # once only: a second rebooking would book twice
        service.rebook_appointment(session, SYS, appt.id, slot_id=options[-1].id, now=NOW)
    assert err.value.code == "SCHED-030" and err.value.detail["rebooked_as"] == moved.id
    assert service.rebooking_choices(session, SYS, appt.id, now=NOW) == []
    with pytest.raises(Conflict) as err:  # an appointment the patient cancelled is booked anew instead
        service.rebook_appointment(session, SYS, moved.id, slot_id=options[-1].id, now=NOW)
    assert err.value.code == "SCHED-030"


def test_a_holiday_is_not_opened(session):
    clinic = make_clinic(session)
    holiday = TODAY + timedelta(days=10)
    schedules.add_closure(session, SYS, org_id=clinic.region.county_hospital.id, day=holiday, kind="holiday",
                          reason="元旦放假", now=NOW)
    assert not service.find_slots(session, SYS, service.SlotQuery(schedule_id=clinic.schedule.id, day_from=holiday,
                                                                   day_to=holiday, free_only=False), now=NOW)


def test_reminders_go_out_the_day_before_once(session, clinic):
    _book(session, tomorrow_slots(session, clinic)[0], clinic.patients[0])
    evening = NOW + timedelta(hours=10)  # 19:00 in Shanghai
    assert sched_jobs.send_reminders(session, NOW) == 0  # 09:00: too early
    assert sched_jobs.send_reminders(session, evening) == 1
    assert sched_jobs.send_reminders(session, evening) == 0
    deliver_pending(session, HANDLERS)
    assert "scheduling.reminder" in [m.topic for m in notifications.messages_to(session, "patient",
                                                                                clinic.patients[0].id)]


def test_sessions_open_idempotently_over_the_horizon(session, clinic):
    assert schedules.open_sessions(session, SYS, today=TODAY, schedule_ids=[clinic.schedule.id]) == 0
    assert schedules.open_sessions(session, SYS, today=TODAY + timedelta(days=1),
                                   schedule_ids=[clinic.schedule.id]) == 1


@pytest.mark.parametrize(("field", "value", "code"), [
    ("reserve_ratio", 1.5, "SCHED-015"), ("department_id", 999_999, "SCHED-015"), ("kind", "dental", "SCHED-015"),
    ("fee_class", "vip", "SCHED-015")])
def test_bad_schedules_are_refused_and_write_nothing(session, clinic, field, value, code):
    data = schedules.ScheduleIn(org_id=clinic.region.county_hospital.id, name="x", department_id=clinic.department_id,
                                templates=[schedules.TemplateIn(0, "am", "08:00", "09:00")])
    setattr(data, field, value)
    before = len(schedules.list_schedules(session, SYS))
    with pytest.raises(Invalid) as err:
        schedules.create_schedule(session, SYS, data, today=TODAY)
    assert err.value.code == code and len(schedules.list_schedules(session, SYS)) == before


# -- the exam booking centre -----------------------------------------------------------------------------

def _exam_schedules(session, clinic):
    org = clinic.region.county_hospital.id
    made = {}
    for kind in ("US", "DR", "CT"):
        eq = registry.add_equipment(session, SYS, org_id=org, kind=kind)
        made[kind] = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
            org_id=org, name=f"{kind} 检查", kind="exam", equipment_id=eq.id, reserve_ratio=0.0,
            channel_shares={"window": 1.0}, templates=[
                schedules.TemplateIn(w, part, start, end, slot_minutes=30)
                for w in range(7) for part, start, end in (("am", "08:00", "11:00"), ("pm", "14:00", "16:00"))]),
            today=TODAY)
    return made


def test_exam_booking_books_several_exams_in_one_trip_honouring_the_rules(session, clinic):
    _exam_schedules(session, clinic)
    org = clinic.region.county_hospital.id
    codes = ["GI-BARIUM", "US-ABD", "CT-PLAIN"]
    plan = exam_booking.plan_exam_booking(session, SYS, org_id=org, codes=codes, day_from=TOMORROW, now=NOW)
    assert plan.trips == 1
    order = [i.code for i in plan.items]
    assert order.index("US-ABD") < order.index("GI-BARIUM")
    booked = exam_booking.book_exams(session, SYS, patient_id=clinic.patients[0].id, org_id=org, codes=codes,
                                     day_from=TOMORROW, idempotency_key="exam-1", now=NOW)
    assert len(booked.appointments) == 3 and {a.kind for a in booked.appointments} == {"exam"}
    again = exam_booking.book_exams(session, SYS, patient_id=clinic.patients[0].id, org_id=org, codes=codes,
                                    day_from=TOMORROW, idempotency_key="exam-1", now=NOW)
    assert again.id == booked.id and all(a.replayed for a in again.appointments)
    deliver_pending(session, HANDLERS)
    sheet = notifications.messages_to(session, "patient", clinic.patients[0].id)
    assert any(m.topic == "scheduling.exams_booked" and "禁食" in m.body["zh"] for m in sheet)


def test_exam_booking_without_equipment_says_why(session, clinic):
    with pytest.raises(Conflict) as err:
        exam_booking.plan_exam_booking(session, SYS, org_id=clinic.region.county_hospital.id, codes=["MRI-HEAD"],
                                       day_from=TOMORROW, now=NOW)
    assert err.value.code == "SCHED-022" and "头颅磁共振" in err.value.message


def test_the_worker_tick_runs_every_periodic_job_idempotently(session, clinic):
    appt = _book(session, tomorrow_slots(session, clinic)[0], clinic.patients[0])
    sched_jobs._last_opened.clear()
    evening = NOW + timedelta(hours=10)
    first = sched_jobs.tick(session, evening)
    assert first["reminders"] == 1 and first["released_back"] >= 1 and "sessions_opened" in first
    again = sched_jobs.tick(session, evening)
    assert again["reminders"] == 0 and again["released_back"] == 0 and "sessions_opened" not in again
    after = sched_jobs.tick(session, NOW + timedelta(days=2))
    assert after["no_shows"] == 1 and service.get_appointment(session, SYS, appt.id).status == "noshow"


def test_quota_policies_per_hospital_and_department_govern_their_schedules(session, clinic):
    org = clinic.region.county_hospital.id
    hospital = schedules.set_quota_policy(session, SYS, schedules.QuotaPolicyIn(
        org_id=org, reserve_ratio=0.5, reserve_lead_days=10, release_back_hours=24, open_days_ahead=5,
        release_time="15:00"))
    assert hospital.schedules_updated == 1  # the clinic's schedule follows its hospital
    assert schedules.get_schedule(session, SYS, clinic.schedule.id).reserve_ratio == 0.5
    dept = registry.add_department(session, SYS, org_id=org, code="04")
    own = schedules.set_quota_policy(session, SYS, schedules.QuotaPolicyIn(
        org_id=org, department_id=dept.id, reserve_ratio=0.2, release_time="08:30"))
    assert own.schedules_updated == 0
    surgery = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
        org_id=org, name="外科", department_id=dept.id, templates=[schedules.TemplateIn(0, "am", "08:00", "09:00")]),
        today=TODAY)
    medicine = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
        org_id=org, name="内科普通", department_id=clinic.department_id,
        templates=[schedules.TemplateIn(0, "am", "08:00", "09:00")]), today=TODAY)
    assert (surgery.reserve_ratio, surgery.release_minute) == (0.2, 8 * 60 + 30)
    assert (medicine.reserve_ratio, medicine.open_days_ahead, medicine.release_minute) == (0.5, 5, 15 * 60)
    # the hospital's policy changed again: the department with its own keeps it
    again = schedules.set_quota_policy(session, SYS, schedules.QuotaPolicyIn(org_id=org, reserve_ratio=0.35))
    assert schedules.get_schedule(session, SYS, surgery.id).reserve_ratio == 0.2
    assert schedules.get_schedule(session, SYS, medicine.id).reserve_ratio == 0.35 and again.schedules_updated == 2
    assert len(schedules.list_quota_policies(session, SYS, org_id=org)) == 2
    with pytest.raises(Invalid):
        schedules.set_quota_policy(session, SYS, schedules.QuotaPolicyIn(org_id=org, reserve_ratio=1.5))


def test_appointments_appear_on_the_patient_timeline_and_open_the_record_to_the_facility(session, clinic):
    from healthgrid.patients import service as patients

    appt = _book(session, tomorrow_slots(session, clinic)[0], clinic.patients[0])
    entries = patients.patient_timeline(session, SYS, clinic.patients[0].id)
    assert any(e.kind == "appointment" and e.detail["appointment_id"] == appt.id for e in entries)
    # a clinician of the hospital the patient is booked at has a care relationship
    doctor = _staff(session, clinic.region.county_hospital.id, role="clinician", username="doc-county")
    assert patients.get_patient(session, doctor, clinic.patients[0].id).id == clinic.patients[0].id
