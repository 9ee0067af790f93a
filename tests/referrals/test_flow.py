"""The issue's walk: one patient from a village clinic up to the county hospital and back,
with the reserved place, the notifications, the audit records and the follow-up task."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from healthgrid.errors import Conflict, Forbidden, Invalid
from healthgrid.jobs import HANDLERS
from healthgrid.notifications import service as notifications
from healthgrid.outbox import deliver_pending
from healthgrid.referrals import desk as ref_desk
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.referrals.domain import ref_code
from healthgrid.scheduling import service as scheduling
from healthgrid.security.models import AuditEvent

from .conftest import NOW, make_ward


def up_form(ward, **kw) -> referrals.ReferralIn:
    base = dict(patient_id=ward.patient.id, from_org_id=ward.region.village_clinic.id,
                to_org_id=ward.region.county_hospital.id, to_department_id=ward.department_id,
                to_practitioner_id=ward.hospital_practitioner_id, urgency="routine",
                diagnoses=[{"code": "I10", "name": "原发性高血压"}],
                reason_text="两次随访血压控制不满意", present_illness="头晕两周", past_history="高血压10年",
                treatment="氨氯地平5mg qd", insurance_type="resident", insurance_region="910102",
                clinical={"sbp": 168, "dbp": 102, "uncontrolled_visits": 2})
    base.update(kw)
    return referrals.ReferralIn(**base)


def test_a_patient_goes_up_to_the_county_hospital_and_back(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    assert (sent.status, sent.direction, sent.from_practitioner_id) == ("submitted", "up", ward.village_practitioner_id)
    assert sent.accept_due_at == NOW + timedelta(hours=24)
    assert any(f["rule"] == "REF-C12" for f in sent.findings)  # two unsatisfactory follow-ups

    accepted = ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id, now=NOW + timedelta(hours=1))
    assert accepted.status == "scheduled" and accepted.appointment_id is not None
    appt = scheduling.get_appointment(session, ward.hospital_doctor, accepted.appointment_id)
    assert (appt.pool, appt.referral_ref, appt.channel, appt.status) == ("reserved", ref_code(sent.id), "referral",
                                                                          "booked")
    assert appt.department_id == ward.department_id and appt.patient_id == ward.patient.id
    slot = scheduling.get_slot(session, ward.hospital_doctor, appt.slot_id)
    assert slot.booked == 1

    on_the_day = appt.starts_at - timedelta(minutes=20)
    assert ref_workflow.mark_arrived(session, ward.hospital_doctor, sent.id, now=on_the_day).status == "arrived"
    assert scheduling.get_appointment(session, ward.hospital_doctor, appt.id).status == "arrived"
    ref_workflow.start_care(session, ward.hospital_doctor, sent.id, now=on_the_day + timedelta(hours=1))
    ref_workflow.complete_referral(session, ward.hospital_doctor, sent.id, now=on_the_day + timedelta(days=3))
    back_at = on_the_day + timedelta(days=3, hours=1)
    back = ref_workflow.back_refer(session, ward.hospital_doctor, sent.id, ref_workflow.BackReferralIn(
        diagnosis="高血压2级 高危", results="心电图：左室高电压；肌酐 88 μmol/L", treatment="调整为氨氯地平+缬沙坦",
        plan="氨氯地平5mg qd + 缬沙坦80mg qd，每2周测血压", rehab="低盐饮食，规律运动",
        clinical={"condition_stable": True, "diagnosis_confirmed": True, "sbp": 136, "dbp": 84}), now=back_at)
    assert back.status == "back_referred" and back.back_to_org_id == ward.region.village_clinic.id
    assert back.followup_due_at == back_at + timedelta(days=14)

    tasks = ref_desk.followup_tasks(session, ward.village_doctor, org_id=ward.region.village_clinic.id,
                                     now=back_at + timedelta(days=1))
    assert [t.referral.id for t in tasks] == [sent.id] and not tasks[0].overdue
    late = ref_desk.followup_tasks(session, ward.village_doctor, org_id=ward.region.village_clinic.id,
                                    overdue_only=True, now=back_at + timedelta(days=15))
    assert [t.referral.id for t in late] == [sent.id]

    done = ref_workflow.record_followup(session, ward.village_doctor, sent.id, outcome="血压132/82，按方案服药",
                                     now=back_at + timedelta(days=7))
    assert done.status == "followed_up" and done.followup_done_at == back_at + timedelta(days=7)
    assert ref_desk.followup_tasks(session, ward.village_doctor, org_id=ward.region.village_clinic.id) == []
    closed = ref_workflow.close_referral(session, ward.village_doctor, sent.id, now=back_at + timedelta(days=8))
    assert closed.status == "closed"
    assert [(e.from_status, e.to_status) for e in closed.events] == [
        (None, "draft"), ("draft", "submitted"), ("submitted", "accepted"), ("accepted", "scheduled"),
        ("scheduled", "arrived"), ("arrived", "in_care"), ("in_care", "completed"), ("completed", "back_referred"),
        ("back_referred", "received_by_primary"), ("received_by_primary", "followed_up"),
        ("followed_up", "closed")]
    assert all(closed.times[k] is not None for k in ("submitted_at", "accepted_at", "scheduled_at", "arrived_at",
                                                     "in_care_at", "completed_at", "back_referred_at",
                                                     "received_by_primary_at", "followed_up_at", "closed_at"))

    # Notifications: the patient, the village doctor and the hospital doctor, step by step.
    deliver_pending(session, HANDLERS)
    to_patient = [m.topic for m in notifications.messages_to(session, "patient", ward.patient.id)]
    assert {"referrals.accepted", "referrals.scheduled", "referrals.back_referred"} <= set(to_patient)
    to_village = [m.topic for m in notifications.messages_to(session, "practitioner", ward.village_practitioner_id)]
    assert {"referrals.scheduled", "referrals.arrived", "referrals.back_referred", "referrals.closed"} <= set(
        to_village)
    to_hospital = [m.topic for m in notifications.messages_to(session, "practitioner",
                                                              ward.hospital_practitioner_id)]
    assert {"referrals.submitted", "referrals.followed_up"} <= set(to_hospital)
    scheduled = next(m for m in notifications.messages_to(session, "patient", ward.patient.id)
                     if m.topic == "referrals.scheduled")
    assert ref_code(sent.id) in scheduled.body["zh"] and "转诊单" in scheduled.body["zh"]

    # Audit: every step is recorded against the patient, by the doctor who took it.
    session.flush()
    trail = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "Referral",
                                                     AuditEvent.resource_id == str(sent.id))).all()
    moves = [json.loads(e.detail or "{}").get("transition") for e in trail if e.action == "update"]
    assert "submitted->accepted" in moves and "completed->back_referred" in moves
    assert {e.username for e in trail} >= {ward.village_doctor.username, ward.hospital_doctor.username}
    assert all(e.patient_id == ward.patient.id for e in trail)


def test_only_the_receiving_side_accepts_and_the_state_machine_refuses_skips(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    with pytest.raises(Forbidden):
        ref_workflow.accept_referral(session, ward.village_doctor, sent.id, now=NOW)
    with pytest.raises(Conflict) as exc:
        ref_workflow.complete_referral(session, ward.hospital_doctor, sent.id, now=NOW)
    assert exc.value.code == "REF-002"
    with pytest.raises(Invalid) as exc:
        ref_workflow.reject_referral(session, ward.hospital_doctor, sent.id, reason="  ", now=NOW)
    assert exc.value.code == "REF-003"
    assert ref_desk.get_referral(session, ward.hospital_doctor, sent.id).status == "submitted"


def test_rejection_releases_the_reserved_place(session):
    ward = make_ward(session)
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward), now=NOW)
    accepted = ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id, now=NOW)
    slot_id = scheduling.get_appointment(session, ward.hospital_doctor, accepted.appointment_id).slot_id
    # Scheduled, then cancelled by the sender: the place goes back.
    gone = ref_workflow.cancel_referral(session, ward.village_doctor, sent.id, reason="患者选择就近治疗", now=NOW)
    assert gone.status == "cancelled" and gone.form["cancel_reason"] == "患者选择就近治疗"
    assert scheduling.get_slot(session, ward.hospital_doctor, slot_id).booked == 0
    assert scheduling.get_appointment(session, ward.hospital_doctor, accepted.appointment_id).status == "cancelled"
