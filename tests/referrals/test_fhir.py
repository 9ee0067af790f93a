"""Referrals over FHIR: ServiceRequest and Task mapped against golden JSON (and strict R4
through fhirclient's models), the status maps, read and every search parameter through the
app's /fhir (actor: the platform), the coded refusals of searches that cannot run, and what
real users' tokens see: the two sides read, an unrelated facility is refused or sees nothing.

Referrals are made through the service at the fixed ``NOW`` of the scheduling fixtures
(Monday 2026-11-23, 09:00 in Shanghai)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from fhirclient.models.servicerequest import ServiceRequest as StrictServiceRequest
from fhirclient.models.task import Task as StrictTask
from tests.factories import SYS

from healthgrid.fhir import FhirRegistry
from healthgrid.referrals import domain as d
from healthgrid.referrals import fhir as referrals_fhir
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.referrals.fhir.mapping import REQUEST_STATUS, TASK_STATUS
from healthgrid.registry import service as registry
from healthgrid.scheduling import service as scheduling
from healthgrid.security import service as security

from .conftest import NOW, make_ward, staff

FHIR_JSON = "application/fhir+json; charset=utf-8"
BASE = "http://testserver/fhir"
HG = "https://healthgrid.example/fhir"
DAY = "2026-11-23"


def form(ward, **kw) -> referrals.ReferralIn:
    base = dict(patient_id=ward.patient.id, from_org_id=ward.region.village_clinic.id,
                to_org_id=ward.region.county_hospital.id, to_department_id=ward.department_id,
                to_practitioner_id=ward.hospital_practitioner_id, urgency="routine",
                diagnoses=[{"code": "I10", "name": "原发性高血压"}, {"code": "E11.900", "name": "2型糖尿病"}],
                reason_text="两次随访血压控制不满意", present_illness="头晕两周", treatment="氨氯地平5mg qd",
                insurance_type="resident", insurance_region="910102",
                attachments=[{"kind": "lab_report", "ref": "DiagnosticReport/77", "title": "血常规"},
                             {"kind": "imaging_report", "ref": "1.2.840.113619.2.55", "title": "胸片"}],
                clinical={"sbp": 168, "dbp": 102, "uncontrolled_visits": 2})
    return referrals.ReferralIn(**(base | kw))


def coding(system: str, code: str, display: str) -> dict:
    return {"system": system, "code": code, "display": display}


def ref(target: str, display: str | None = None) -> dict:
    return {"reference": target, "display": display} if display else {"reference": target}


def golden_service_request(w, rid: int) -> dict:
    return {
        "resourceType": "ServiceRequest", "id": str(rid), "meta": {"versionId": "5"},
        "extension": [
            {"url": f"{HG}/StructureDefinition/referral-insurance", "extension": [
                {"url": "type", "valueCoding": coding(f"{HG}/CodeSystem/insurance-type", "resident", "城乡居民医保")},
                {"url": "region", "valueString": "910102"}]},
            {"url": f"{HG}/StructureDefinition/referring-organization",
             "valueReference": ref(f"Organization/{w.region.village_clinic.id}", "桃源村卫生室")}],
        "identifier": [{"type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/v2-0203", "PLAC",
                                                   "Placer Identifier")], "text": "转诊单号"},
                        "system": f"{HG}/NamingSystem/referral", "value": d.ref_code(rid)}],
        "status": "active", "intent": "order",
        "category": [{"coding": [coding("http://snomed.info/sct", "3457005", "Patient referral")], "text": "双向转诊"},
                     {"coding": [coding(f"{HG}/CodeSystem/referral-direction", "up", "上转")], "text": "上转"}],
        "priority": "routine",
        "subject": ref(f"Patient/{w.patient.id}", "周桂兰"),
        "occurrenceDateTime": "2026-11-24T08:30:00+08:00",
        "authoredOn": "2026-11-23T09:00:00+08:00",
        "requester": ref(f"Practitioner/{w.village_practitioner_id}", "李村医"),
        "performerType": {"coding": [coding(f"{HG}/CodeSystem/department", "03", "内科")], "text": "内科"},
        "performer": [ref(f"Organization/{w.region.county_hospital.id}", "永宁县人民医院"),
                      ref(f"Practitioner/{w.hospital_practitioner_id}", "张晓明")],
        "reasonCode": [
            {"coding": [coding(f"{HG}/CodeSystem/icd-10-cn", "I10", "原发性高血压"),
                        coding("http://hl7.org/fhir/sid/icd-10", "I10", "原发性高血压")], "text": "原发性高血压"},
            {"coding": [coding(f"{HG}/CodeSystem/icd-10-cn", "E11.900", "2型糖尿病")], "text": "2型糖尿病"}],
        "supportingInfo": [ref("DiagnosticReport/77", "血常规"),
                           {"type": "DiagnosticReport", "identifier": {"value": "1.2.840.113619.2.55"},
                            "display": "胸片"}],
        "note": [{"text": "转诊原因：两次随访血压控制不满意"}, {"text": "主要现病史：头晕两周"},
                 {"text": "治疗经过：氨氯地平5mg qd"}],
    }


def golden_task(w, rid: int, appointment_id: int) -> dict:
    back = f"{HG}/CodeSystem/back-referral"
    return {
        "resourceType": "Task", "id": str(rid), "meta": {"versionId": "10"},
        "basedOn": [ref(f"ServiceRequest/{rid}")], "status": "completed",
        "businessStatus": {"coding": [coding(f"{HG}/CodeSystem/referral-status", "back_referred", "已回转")],
                           "text": "已回转"},
        "intent": "order", "priority": "routine",
        "code": {"coding": [coding("http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request")],
                 "text": "接诊转诊"},
        "focus": ref(f"ServiceRequest/{rid}"),
        "for": ref(f"Patient/{w.patient.id}", "周桂兰"),
        "executionPeriod": {"start": "2026-11-23T10:00:00+08:00", "end": "2026-11-27T08:10:00+08:00"},
        "authoredOn": "2026-11-23T09:00:00+08:00",
        "lastModified": "2026-11-27T09:10:00+08:00",
        "requester": ref(f"Practitioner/{w.village_practitioner_id}", "李村医"),
        "owner": ref(f"Organization/{w.region.county_hospital.id}", "永宁县人民医院"),
        "restriction": {"period": {"end": "2026-11-24T09:00:00+08:00"}},
        "output": [
            {"type": {"text": "预约"}, "valueReference": ref(f"Appointment/{appointment_id}")},
            {"type": {"coding": [coding(back, "diagnosis", "诊断结果")], "text": "诊断结果"},
             "valueString": "高血压2级 高危"},
            {"type": {"coding": [coding(back, "plan", "下一步治疗方案")], "text": "下一步治疗方案"},
             "valueString": "氨氯地平5mg qd + 缬沙坦80mg qd"},
            {"type": {"coding": [coding(back, "rehab", "康复建议")], "text": "康复建议"}, "valueString": "低盐饮食"},
            {"type": {"coding": [coding(back, "back-to", "回转至")], "text": "回转至"},
             "valueReference": ref(f"Organization/{w.region.village_clinic.id}")}],
    }


@pytest.fixture
def fixed(session, settings):
    reg = FhirRegistry(settings.fhir)
    referrals_fhir.register(reg)
    return SimpleNamespace(reg=reg, ward=make_ward(session))


def send(session, ward, **kw):
    return referrals.create_referral(session, ward.village_doctor, form(ward, **kw), now=NOW)


def test_a_scheduled_referral_maps_to_a_golden_service_request(session, fixed):
    w = fixed.ward
    sent = send(session, w)
    ref_workflow.accept_referral(session, w.hospital_doctor, sent.id, now=NOW + timedelta(hours=1))
    answer = fixed.reg.read(session, "ServiceRequest", str(sent.id), SYS)
    assert answer.resource == golden_service_request(w, sent.id)
    assert answer.headers["ETag"] == 'W/"5"'
    StrictServiceRequest(answer.resource)  # fhirclient raises on anything that is not R4


def test_a_referral_referred_back_maps_to_a_golden_task(session, fixed):
    w = fixed.ward
    sent = send(session, w)
    accepted = ref_workflow.accept_referral(session, w.hospital_doctor, sent.id, now=NOW + timedelta(hours=1))
    starts = scheduling.get_appointment(session, SYS, accepted.appointment_id).starts_at
    ref_workflow.mark_arrived(session, w.hospital_doctor, sent.id, now=starts - timedelta(minutes=20))
    ref_workflow.start_care(session, w.hospital_doctor, sent.id, now=starts)
    done = starts + timedelta(days=3) - timedelta(minutes=20)
    ref_workflow.complete_referral(session, w.hospital_doctor, sent.id, now=done)
    ref_workflow.back_refer(session, w.hospital_doctor, sent.id, ref_workflow.BackReferralIn(
        diagnosis="高血压2级 高危", plan="氨氯地平5mg qd + 缬沙坦80mg qd", rehab="低盐饮食",
        clinical={"condition_stable": True, "diagnosis_confirmed": True}), now=done + timedelta(hours=1))
    task = fixed.reg.read(session, "Task", str(sent.id), SYS).resource
    assert task == golden_task(w, sent.id, accepted.appointment_id)
    StrictTask(task)
    assert fixed.reg.read(session, "ServiceRequest", str(sent.id), SYS).resource["status"] == "completed"


def test_every_status_has_a_request_and_a_task_status():
    assert set(REQUEST_STATUS) == set(TASK_STATUS) == set(d.Status)
    assert {REQUEST_STATUS[s] for s in (d.Status.REJECTED, d.Status.CANCELLED, d.Status.EXPIRED,
                                        d.Status.NO_SHOW)} == {"revoked"}
    assert [TASK_STATUS[s] for s in (d.Status.SUBMITTED, d.Status.SCHEDULED, d.Status.IN_CARE, d.Status.NO_SHOW,
                                     d.Status.EXPIRED, d.Status.CLOSED)] == [
        "requested", "accepted", "in-progress", "failed", "failed", "completed"]


def test_a_rejection_is_revoked_with_its_reason_and_an_emergency_is_stat(session, fixed):
    w = fixed.ward
    refused = send(session, w)
    ref_workflow.reject_referral(session, w.hospital_doctor, refused.id, reason="本院无床位", now=NOW)
    request = fixed.reg.read(session, "ServiceRequest", str(refused.id), SYS).resource
    task = fixed.reg.read(session, "Task", str(refused.id), SYS).resource
    assert (request["status"], task["status"], task["statusReason"]["text"]) == ("revoked", "rejected", "本院无床位")
    assert task["businessStatus"]["coding"][0]["code"] == "rejected"
    urgent = send(session, w, urgency="emergency", attachments=[], insurance_type=None, insurance_region=None)
    request = fixed.reg.read(session, "ServiceRequest", str(urgent.id), SYS).resource
    task = fixed.reg.read(session, "Task", str(urgent.id), SYS).resource
    assert (request["priority"], task["priority"]) == ("stat", "stat")
    assert "restriction" not in task and "supportingInfo" not in request  # no acceptance deadline, no results
    assert all(e["url"] != referrals_fhir.INSURANCE_EXTENSION for e in request["extension"])
    StrictServiceRequest(request)
    StrictTask(task)


# --- REST through the app ------------------------------------------------------------------------

def get(client, path: str, **query) -> dict:
    response = client.get(path, params=query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    return response.json()


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def code_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["details"]["coding"][0]["code"]


@pytest.fixture
def made(session):
    """Three referrals of one patient from the village clinic to the county hospital: one
    scheduled (sent on the 23rd), then on the 25th an urgent one rejected and one waiting
    (sent by the platform: no doctor named, so its requester is the village clinic)."""
    w = make_ward(session)
    scheduled = send(session, w)
    ref_workflow.accept_referral(session, w.hospital_doctor, scheduled.id, now=NOW + timedelta(hours=1))
    later = NOW + timedelta(days=2)
    rejected = referrals.create_referral(session, w.village_doctor, form(w, urgency="urgent"), now=later)
    ref_workflow.reject_referral(session, w.hospital_doctor, rejected.id, reason="请转上级医院", now=later)
    waiting = referrals.create_referral(session, SYS, form(w, from_practitioner_id=None), now=later)
    return SimpleNamespace(w=w, scheduled=str(scheduled.id), rejected=str(rejected.id), waiting=str(waiting.id),
                           hospital=f"Organization/{w.region.county_hospital.id}",
                           village=f"Organization/{w.region.village_clinic.id}",
                           doctor=f"Practitioner/{w.village_practitioner_id}", patient=f"Patient/{w.patient.id}")


def test_metadata_lists_service_request_and_task_read_only(client):
    resources = {r["type"]: r for r in get(client, "/fhir/metadata")["rest"][0]["resource"]}
    for rtype in ("ServiceRequest", "Task"):
        assert {i["code"] for i in resources[rtype]["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in resources["ServiceRequest"]["searchParam"]} == {
        "_id", "patient", "subject", "requester", "priority", "identifier", "performer", "status", "authored"}
    assert {p["name"] for p in resources["Task"]["searchParam"]} == {
        "_id", "patient", "subject", "requester", "priority", "focus", "based-on", "owner", "status",
        "business-status", "authored-on"}


def test_read_service_request_and_task_of_a_referral(client, made):
    response = client.get(f"/fhir/ServiceRequest/{made.scheduled}")
    assert response.status_code == 200 and response.headers["ETag"] == 'W/"5"'
    request = response.json()
    assert request["identifier"][0]["value"] == d.ref_code(int(made.scheduled))
    assert (request["status"], request["subject"]["reference"]) == ("active", made.patient)
    task = get(client, f"/fhir/Task/{made.scheduled}")
    assert (task["status"], task["focus"]["reference"]) == ("accepted", f"ServiceRequest/{made.scheduled}")
    assert get(client, f"/fhir/ServiceRequest/{made.waiting}")["requester"]["reference"] == made.village
    assert code_of(client.get("/fhir/Task/99999999"), 404) == "FHIR-008"
    assert code_of(client.get("/fhir/ServiceRequest/abc"), 404) == "FHIR-008"


def test_service_request_search_by_every_parameter(client, made):
    everyone = sorted([made.scheduled, made.rejected, made.waiting], key=int, reverse=True)  # newest first
    sr = "/fhir/ServiceRequest"
    assert ids(get(client, sr, patient=made.patient)) == everyone
    assert ids(get(client, sr, subject=made.patient, status="active")) == [made.waiting, made.scheduled]
    assert ids(get(client, sr, requester=made.doctor)) == [made.rejected, made.scheduled]
    assert ids(get(client, sr, requester=made.village, patient=made.patient)) == everyone  # all it sent
    assert ids(get(client, sr, performer=made.hospital, status="revoked,completed")) == [made.rejected]
    assert ids(get(client, sr, performer=made.hospital, priority="urgent")) == [made.rejected]
    assert ids(get(client, sr, patient=made.patient, authored=DAY)) == [made.scheduled]
    assert ids(get(client, sr, patient=made.patient, authored=f"gt{DAY}")) == [made.waiting, made.rejected]
    assert ids(get(client, sr, patient=made.patient, authored="le2026-11-22")) == []
    range_ = client.get(f"{sr}?patient={made.patient}&authored=ge2026-11&authored=lt2026-11-24").json()
    assert ids(range_) == [made.scheduled]
    code = d.ref_code(int(made.rejected))
    assert ids(get(client, sr, identifier=f"{referrals_fhir.REFERRAL_SYSTEM}|{code}")) == [made.rejected]
    assert ids(get(client, sr, identifier="ZZ99999999")) == []
    assert ids(get(client, sr, _id=f"{made.scheduled},{made.waiting}")) == sorted([made.scheduled, made.waiting],
                                                                                  key=int)
    assert ids(get(client, sr, patient=made.patient, status="draft")) == []
    paged = get(client, sr, patient=made.patient, _count="2")
    assert ids(paged) == everyone[:2] and "total" not in paged
    nxt = next(link["url"] for link in paged["link"] if link["relation"] == "next")
    last = client.get(nxt.removeprefix("http://testserver")).json()
    assert ids(last) == everyone[2:] and last["total"] == 3


def test_task_search_by_owner_status_business_status_and_focus(client, made):
    task = "/fhir/Task"
    assert ids(get(client, task, owner=made.hospital, status="requested")) == [made.waiting]
    assert ids(get(client, task, patient=made.patient, status="accepted,rejected")) == [made.rejected,
                                                                                        made.scheduled]
    assert ids(get(client, task, owner=made.hospital, **{"business-status": "scheduled"})) == [made.scheduled]
    assert ids(get(client, task, owner=made.hospital, status="accepted", **{"business-status": "rejected"})) == []
    assert ids(get(client, task, requester=made.doctor, **{"authored-on": f"ge{DAY}"})) == [made.rejected,
                                                                                            made.scheduled]
    assert ids(get(client, task, focus=f"ServiceRequest/{made.rejected}")) == [made.rejected]
    assert ids(get(client, task, **{"based-on": made.waiting})) == [made.waiting]
    assert ids(get(client, task, patient=made.patient, status="completed")) == []


def test_searches_that_cannot_run_are_operation_outcomes(client, made):
    assert code_of(client.get("/fhir/ServiceRequest?code=3457005"), 400) == "FHIR-002"
    assert code_of(client.get("/fhir/Task?performer=Organization/1"), 400) == "FHIR-002"
    assert code_of(client.get("/fhir/ServiceRequest?status=waiting"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/Task?business-status=done"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/ServiceRequest?authored=2026-11-23T09:00:00Z"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/ServiceRequest?authored=ne2026-11-23"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/ServiceRequest?performer=Practitioner/1"), 400) == "FHIR-003"
    assert code_of(client.get(f"/fhir/ServiceRequest?_id={made.waiting}&status=active"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/ServiceRequest?patient=1&patient=2"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/ServiceRequest?_count=many"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/Task?priority=soon"), 400) == "FHIR-003"
    assert code_of(client.post("/fhir/ServiceRequest", json={"resourceType": "ServiceRequest"}), 405) == "FHIR-005"


# --- what real users see ------------------------------------------------------------------------

def bearer(session, actor) -> dict:
    return {"Authorization": f"Bearer {security.create_token(session, SYS, user_id=actor.user_id, name='t').token}"}


@pytest.fixture
def sides(session):
    w = make_ward(session)
    other = registry.create_organization(session, SYS, code="91-VC9", name="远山村卫生室", level="L0",
                                         org_type="village_clinic", division_code=w.region.village.code)
    sent = send(session, w)
    return SimpleNamespace(w=w, sent=sent.id, sender=bearer(session, w.village_doctor),
                           receiver=bearer(session, w.hospital_doctor),
                           stranger=bearer(session, staff(session, other.id, username="stranger-91")))


def test_both_sides_read_and_find_the_referral(secure_client, session, sides):
    for headers in (sides.sender, sides.receiver):
        for rtype in ("ServiceRequest", "Task"):
            response = secure_client.get(f"/fhir/{rtype}/{sides.sent}", headers=headers)
            assert response.status_code == 200 and response.json()["for" if rtype == "Task" else "subject"][
                "reference"] == f"Patient/{sides.w.patient.id}"
        found = secure_client.get("/fhir/Task", params={"status": "requested"}, headers=headers).json()
        assert ids(found) == [str(sides.sent)]


def test_a_user_of_an_unrelated_facility_is_refused_or_sees_nothing(secure_client, session, sides):
    for rtype in ("ServiceRequest", "Task"):
        assert code_of(secure_client.get(f"/fhir/{rtype}/{sides.sent}", headers=sides.stranger), 403).startswith("SEC-")
        everything = secure_client.get(f"/fhir/{rtype}", headers=sides.stranger)
        assert everything.status_code == 200 and ids(everything.json()) == []
    by_patient = secure_client.get("/fhir/ServiceRequest", params={"patient": f"Patient/{sides.w.patient.id}"},
                                   headers=sides.stranger)
    assert code_of(by_patient, 403).startswith("SEC-")
    by_owner = secure_client.get("/fhir/Task", params={"owner": f"Organization/{sides.w.region.county_hospital.id}"},
                                 headers=sides.stranger)
    assert ids(by_owner.json()) == []


def test_a_draft_is_seen_by_its_sending_facility_only(secure_client, session, sides):
    draft = referrals.create_referral(session, sides.w.village_doctor, form(sides.w), submit=False, now=NOW)
    mine = secure_client.get(f"/fhir/ServiceRequest/{draft.id}", headers=sides.sender)
    assert mine.status_code == 200 and mine.json()["status"] == "draft"
    assert secure_client.get(f"/fhir/ServiceRequest/{draft.id}", headers=sides.receiver).status_code in (403, 404)
    listed = secure_client.get("/fhir/ServiceRequest", params={"status": "draft"}, headers=sides.receiver).json()
    assert ids(listed) == []
