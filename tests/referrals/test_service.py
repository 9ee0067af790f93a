"""Referral use cases beyond the main walk: intake rules, emergencies, escalation to the
referral centre, service levels, the booked place followed by the worker, idempotency,
criteria that block, stale versions, validation that writes nothing, and access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.factories import SYS

from healthgrid.errors import Conflict, Forbidden, Invalid, PreconditionFailed
from healthgrid.jobs import HANDLERS, PERIODIC
from healthgrid.notifications import service as notifications
from healthgrid.outbox import deliver_pending
from healthgrid.patients import service as patients
from healthgrid.referrals import desk as ref_desk
from healthgrid.referrals import jobs as referral_jobs
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.referrals.models import Referral
from healthgrid.registry import service as registry
from healthgrid.scheduling import jobs as scheduling_jobs
from healthgrid.scheduling import service as scheduling

from .conftest import NOW, make_ward, staff
from .test_flow import up_form


def test_a_department_that_auto_accepts_books_the_place_on_submission(session):
    ward = make_ward(session)
    ref_desk.set_intake_rule(session, SYS, department_id=ward.department_id, auto_accept_routine=True)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    assert sent.status == "scheduled" and sent.appointment_id is not None
    assert [e.to_status for e in sent.events] == ["draft", "submitted", "accepted", "scheduled"]
    # An urgent referral is still answered by a person.
    urgent = referrals.create_referral(session, ward.village_doctor, up_form(ward, urgency="urgent",
                                                                               patient_id=ward.patient2.id),
                                       now=NOW)
    assert urgent.status == "submitted"


def test_the_referring_doctor_may_pick_the_reserved_place(session):
    ward = make_ward(session)
    places = ref_desk.reserved_places(session, ward.village_doctor, org_id=ward.region.county_hospital.id,
                                       department_id=ward.department_id, now=NOW)
    assert places and all(p.pool == "reserved" for p in places)
    chosen = places[-1]
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward, slot_id=chosen.id), now=NOW)
    accepted = ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id, now=NOW)
    assert accepted.scheduled_for == chosen.starts_at
    # A public place is not a referral's to pick.
    web = scheduling.find_slots(session, SYS, scheduling.SlotQuery(schedule_id=ward.clinic.schedule.id, pool="web"),
                                now=NOW)[0]
    with pytest.raises(Invalid) as exc:
        referrals.create_referral(session, ward.village_doctor, up_form(ward, slot_id=web.id), now=NOW)
    assert exc.value.code == "REF-009"


def test_an_emergency_is_accepted_implicitly_and_arrives_without_a_place(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(
        ward, urgency="emergency", clinical={"sbp": 210, "dbp": 120, "red_flags": ["altered_consciousness"]}),
        now=NOW)
    assert sent.status == "accepted" and sent.accept_due_at is None and sent.appointment_id is None
    assert {f["rule"]: f["severity"] for f in sent.findings} == {"REF-C03": "info", "REF-C05": "info"}
    came = ref_workflow.mark_arrived(session, ward.hospital_doctor, sent.id, now=NOW + timedelta(minutes=40))
    assert came.status == "arrived"


def test_an_urgent_referral_without_a_reserved_place_goes_to_the_referral_centre(session):
    ward = make_ward(session)
    empty = registry.add_department(session, SYS, org_id=ward.region.county_hospital.id, code="04")
    sent = referrals.create_referral(session, ward.village_doctor, up_form(
        ward, urgency="urgent", to_department_id=empty.id, to_practitioner_id=None), now=NOW)
    accepted = ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id, now=NOW + timedelta(minutes=30))
    assert accepted.status == "accepted" and accepted.appointment_id is None
    assert accepted.escalated_at is not None
    assert accepted.escalated_to_org_id == ward.region.county_hospital.id  # the 医共体's lead hospital
    deliver_pending(session, HANDLERS)
    desk = staff(session, ward.region.county_hospital.id, username="desk-91", role="nurse")
    inbox = notifications.inbox(session, desk, patient_ids=[])
    assert any(m.title == "转诊需协调" for m in inbox)
    centre = ref_desk.search_referrals(session, desk, ref_desk.ReferralQuery(
        org_id=ward.region.county_hospital.id, box="centre"))
    assert [r.id for r in centre] == [sent.id]
    # The centre sends it to the department that has places; the first is cancelled.
    moved = ref_workflow.redirect_referral(session, desk, sent.id, to_org_id=ward.region.county_hospital.id,
                                        to_department_id=ward.department_id, now=NOW + timedelta(hours=1))
    assert moved.previous_id == sent.id and moved.status == "submitted"
    assert ref_desk.get_referral(session, desk, sent.id).status == "cancelled"


def test_unanswered_referrals_expire_and_are_escalated_by_the_worker(session):
    ward = make_ward(session)
    urgent = referrals.create_referral(session, ward.village_doctor, up_form(ward, urgency="urgent"), now=NOW)
    routine = referrals.create_referral(session, ward.village_doctor, up_form(
        ward, patient_id=ward.patient2.id), now=NOW)
    assert referral_jobs.expire_unanswered(session, NOW + timedelta(hours=1)) == 0
    assert referral_jobs.expire_unanswered(session, NOW + timedelta(hours=3)) == 1
    late = ref_desk.get_referral(session, ward.hospital_doctor, urgent.id)
    assert late.status == "expired" and late.escalated_at == NOW + timedelta(hours=3)
    overdue = ref_desk.search_referrals(session, ward.hospital_doctor, ref_desk.ReferralQuery(
        org_id=ward.region.county_hospital.id, box="in", overdue=True), now=NOW + timedelta(hours=25))
    assert [r.id for r in overdue] == [routine.id]
    assert referral_jobs.expire_unanswered(session, NOW + timedelta(hours=25)) == 1
    assert referral_jobs.expire_unanswered(session, NOW + timedelta(hours=26)) == 0  # idempotent
    deliver_pending(session, HANDLERS)
    topics = [m.topic for m in notifications.messages_to(session, "practitioner", ward.village_practitioner_id)]
    assert topics.count("referrals.expired") == 2


def test_the_worker_follows_the_booked_place(session):
    ward = make_ward(session)
    first = ref_workflow.accept_referral(session, ward.hospital_doctor, referrals.create_referral(
        session, ward.village_doctor, up_form(ward), now=NOW).id, now=NOW)
    second = ref_workflow.accept_referral(session, ward.hospital_doctor, referrals.create_referral(
        session, ward.village_doctor, up_form(ward, patient_id=ward.patient2.id), now=NOW).id, now=NOW)
    appt = scheduling.get_appointment(session, ward.hospital_doctor, first.appointment_id)
    scheduling.check_in(session, ward.hospital_doctor, appt.id, now=appt.starts_at - timedelta(minutes=5))
    later = max(appt.ends_at, second.scheduled_for) + timedelta(hours=6)
    scheduling_jobs.mark_no_shows(session, later)
    done = referral_jobs.follow_places(session, later)
    assert done["arrived"] == 1 and done["no_show"] == 1
    assert ref_desk.get_referral(session, ward.hospital_doctor, first.id).status == "arrived"
    assert ref_desk.get_referral(session, ward.hospital_doctor, second.id).status == "no_show"
    assert referral_jobs.follow_places(session, later) == {"arrived": 0, "no_show": 0, "rebooked": 0}


def test_a_retried_referral_is_sent_once(session):
    ward = make_ward(session)
    a = referrals.create_referral(session, ward.village_doctor, up_form(ward), idempotency_key="k-1", now=NOW)
    b = referrals.create_referral(session, ward.village_doctor, up_form(ward), idempotency_key="k-1", now=NOW)
    assert (a.id, a.replayed, b.id, b.replayed) == (a.id, False, a.id, True)
    with pytest.raises(Conflict) as exc:
        referrals.create_referral(session, ward.village_doctor, up_form(ward, urgency="urgent"),
                                  idempotency_key="k-1", now=NOW)
    assert exc.value.code == "REF-013"
    assert session.scalar(select(func.count()).select_from(Referral)) == 1


def test_criteria_that_block_stop_the_submission_but_not_the_draft(session):
    ward = make_ward(session)
    # The hospital knows the patient through an earlier up-referral.
    referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    before = session.scalar(select(func.count()).select_from(Referral))
    down = up_form(ward, from_org_id=ward.region.county_hospital.id, to_org_id=ward.region.township_centre.id,
                   to_department_id=None, to_practitioner_id=None, clinical={"condition_stable": False})
    with pytest.raises(Invalid) as exc:
        referrals.create_referral(session, ward.hospital_doctor, down, now=NOW)
    assert exc.value.code == "REF-006"
    assert {f["rule"] for f in exc.value.detail["findings"]} >= {"REF-C08", "REF-C09"}
    assert session.scalar(select(func.count()).select_from(Referral)) == before
    draft = referrals.create_referral(session, ward.hospital_doctor, down, submit=False, now=NOW)
    assert draft.status == "draft" and draft.direction == "down"
    with pytest.raises(Invalid):
        referrals.submit_referral(session, ward.hospital_doctor, draft.id, now=NOW)
    # A stable patient with a confirmed diagnosis and a plan goes down.
    ok = up_form(ward, from_org_id=ward.region.county_hospital.id, to_org_id=ward.region.township_centre.id,
                 to_department_id=None, to_practitioner_id=None,
                 clinical={"condition_stable": True, "diagnosis_confirmed": True, "care_plan": "氨氯地平，每月随访"})
    sent = referrals.create_referral(session, ward.hospital_doctor, ok, now=NOW)
    assert (sent.status, sent.direction, sent.findings) == ("submitted", "down", [])


def _bad(ward, other_dept: int) -> dict:
    return {
        "same org": ({"to_org_id": ward.region.village_clinic.id}, "to_org_id"),
        "icd": ({"diagnoses": [{"code": "高血压", "name": "x"}]}, "diagnoses[0].code"),
        "urgency": ({"urgency": "soon"}, "urgency"),
        "department elsewhere": ({"to_department_id": other_dept}, "to_department_id"),
        "bp": ({"clinical": {"sbp": 999}}, "clinical.sbp"),
        "attachment": ({"attachments": [{"kind": "photo", "ref": "x", "title": "y"}]}, "attachments[0].kind"),
        "insurance": ({"insurance_type": "vip"}, "insurance_type"),
    }


@pytest.mark.parametrize("case", ["same org", "icd", "urgency", "department elsewhere", "bp", "attachment",
                                  "insurance"])
def test_bad_forms_are_refused_and_write_nothing(session, case):
    ward = make_ward(session)
    other = registry.add_department(session, SYS, org_id=ward.region.township_centre.id, code="50")
    change, field = _bad(ward, other.id)[case]
    with pytest.raises(Invalid) as exc:
        referrals.create_referral(session, ward.village_doctor, up_form(ward, **change), now=NOW)
    assert (exc.value.code, exc.value.detail.get("field")) == ("REF-005", field)
    assert session.scalar(select(func.count()).select_from(Referral)) == 0


def test_a_stale_version_is_refused(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id, expected_version=sent.version, now=NOW)
    with pytest.raises(PreconditionFailed) as exc:
        ref_workflow.reject_referral(session, ward.hospital_doctor, sent.id, reason="满床",
                                     expected_version=sent.version, now=NOW)
    assert exc.value.code == "REF-004"


def test_two_accepts_one_after_the_other_the_second_is_refused(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    other = staff(session, ward.region.county_hospital.id, username="hdoc2-91")
    ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id, now=NOW)
    with pytest.raises(Conflict) as exc:
        ref_workflow.accept_referral(session, other, sent.id, now=NOW)
    assert exc.value.code == "REF-002"
    assert len(scheduling.patient_appointments(session, SYS, ward.patient.id)) == 1


def test_staff_elsewhere_neither_read_nor_act(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    elsewhere = make_ward(session, prefix="92")
    with pytest.raises(Forbidden):
        ref_desk.get_referral(session, elsewhere.hospital_doctor, sent.id)
    with pytest.raises(Forbidden):
        ref_workflow.accept_referral(session, elsewhere.hospital_doctor, sent.id, now=NOW)
    with pytest.raises(Forbidden):
        ref_desk.search_referrals(session, elsewhere.hospital_doctor,
                                   ref_desk.ReferralQuery(org_id=ward.region.county_hospital.id))
    mine = ref_desk.search_referrals(session, elsewhere.hospital_doctor, ref_desk.ReferralQuery())
    assert sent.id not in [r.id for r in mine]
    # The receiving hospital's staff read the referred patient's record through the referral.
    nurse = staff(session, ward.region.county_hospital.id, username="nurse-91", role="nurse")
    assert patients.get_patient(session, nurse, ward.patient.id).id == ward.patient.id


def test_the_referral_is_on_the_patient_timeline(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    entries = patients.patient_timeline(session, ward.village_doctor, ward.patient.id)
    assert any(e.kind == "referral" and e.detail["referral_id"] == sent.id for e in entries)


def test_the_receiving_desk_hears_of_a_referral_without_a_named_doctor(session):
    ward = make_ward(session)
    referrals.create_referral(session, ward.village_doctor, up_form(ward, to_practitioner_id=None), now=NOW)
    deliver_pending(session, HANDLERS)
    desk = staff(session, ward.region.county_hospital.id, username="desk2-91", role="nurse")
    assert [m.title for m in notifications.inbox(session, desk, patient_ids=[])] == ["收到转诊申请"]
    # Staff of another facility do not see that desk's messages.
    assert notifications.inbox(session, ward.village_doctor, patient_ids=[]) == []


def test_the_worker_runs_the_referral_jobs(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward, urgency="urgent"), now=NOW)
    assert referral_jobs.tick in PERIODIC
    done = referral_jobs.tick(session, NOW + timedelta(hours=5))
    assert done["referrals_expired"] == 1 and set(done) >= {"referrals_arrived", "referrals_no_show"}
    assert ref_desk.get_referral(session, ward.village_doctor, sent.id).status == "expired"
