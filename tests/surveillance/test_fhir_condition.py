"""Report cards as FHIR R4 Condition: the mapping against golden JSON (and strict R4 through
fhirclient's models), the verification-status table, then read and every search parameter
over HTTP, paging, and scope with a real token (another county's CDC sees nothing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from fhirclient.models.condition import Condition as StrictCondition
from tests.factories import SYS

from healthgrid.fhir import prune
from healthgrid.security import service as security
from healthgrid.surveillance import reporting
from healthgrid.surveillance.fhir.condition import (
    CARD_SYSTEM,
    EXT,
    ICD10_CN_SYSTEM,
    NIDRIS_SYSTEM,
    condition_to_fhir,
)

from .test_reporting import NOW, adult, make_world, report

FHIR = {"accept": "application/fhir+json"}
BASE = "https://healthgrid.example/fhir"


@pytest.fixture
def w(session):
    return make_world(session)


def strict(resource: dict) -> dict:
    """Valid R4 by fhirclient's strict models, round-tripped."""
    return StrictCondition(resource, strict=True).as_json()


def golden(w, view) -> dict:
    return {
        "resourceType": "Condition", "id": str(view.id),
        "meta": {"versionId": "1", "lastUpdated": "2025-03-08T14:00:00+08:00"},
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
             "valueDateTime": "2025-03-08T10:00:00+08:00"},
            {"url": f"{BASE}/StructureDefinition/case-report-status", "valueCode": "reported"},
            {"url": f"{BASE}/StructureDefinition/case-report-type", "valueCode": "first"},
            {"url": f"{BASE}/StructureDefinition/case-classification",
             "valueCoding": {"system": f"{BASE}/CodeSystem/case-classification", "code": "clinical",
                             "display": "临床诊断病例"}},
            {"url": f"{BASE}/StructureDefinition/case-report-clocks", "extension": [
                {"url": "diagnosed", "valueDateTime": "2025-03-08T10:00:00+08:00"},
                {"url": "report-due", "valueDateTime": "2025-03-09T10:00:00+08:00"},
                {"url": "reported", "valueDateTime": "2025-03-08T14:00:00+08:00"},
                {"url": "late-minutes", "valueInteger": 0},
                {"url": "review-due", "valueDateTime": "2025-03-09T14:00:00+08:00"},
                {"url": "review-overdue", "valueBoolean": False}]},
            {"url": f"{BASE}/StructureDefinition/reporting-organization",
             "valueReference": {"reference": f"Organization/{w.region.county_hospital.id}",
                                "display": "永宁县人民医院"}}],
        "identifier": [{"system": f"{BASE}/NamingSystem/case-report-card", "value": view.card_number}],
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "encounter-diagnosis"}]},
                     {"coding": [{"system": f"{BASE}/CodeSystem/case-report-category", "code": "notifiable-disease",
                                  "display": "法定传染病报告"}]}],
        "code": {"coding": [{"system": f"{BASE}/CodeSystem/icd-10-cn", "code": "A03.900"},
                            {"system": f"{BASE}/CodeSystem/nidris-disease", "code": "0400", "display": "痢疾"},
                            {"system": f"{BASE}/CodeSystem/nidris-disease", "code": "0401", "display": "细菌性痢疾"}],
                 "text": "痢疾（细菌性痢疾）"},
        "subject": {"reference": f"Patient/{w.patient.id}"},
        "onsetDateTime": "2025-03-05",
        "recordedDate": "2025-03-08T14:00:00+08:00",
        "asserter": {"reference": f"Practitioner/{w.region.doctor.id}", "display": "张晓明"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
    }


def test_a_card_maps_to_the_golden_condition_and_is_strict_r4(session, w):
    view = report(session, w, patient_id=w.patient.id, icd10="A03.900")
    mapped = prune(condition_to_fhir(view, now=NOW))
    assert mapped == golden(w, view)
    assert strict(mapped)["identifier"][0]["value"] == view.card_number


def test_without_a_diagnosis_code_the_catalogues_icd10_is_used_and_who_shaped_codes_get_both_systems(session, w):
    view = report(session, w, adult(w, disease="3500", subtype=None, id_number="E1234567", id_type="passport"))
    coding = prune(condition_to_fhir(view, now=NOW))["code"]["coding"]
    assert [(c["system"], c["code"]) for c in coding] == [
        (ICD10_CN_SYSTEM, "J09"), ("http://hl7.org/fhir/sid/icd-10", "J09"), (NIDRIS_SYSTEM, "3500")]
    assert prune(condition_to_fhir(view, now=NOW))["subject"] == {"display": "王建国"}  # not linked


@pytest.mark.parametrize(("case_class", "deletion", "verification", "clinical"), [
    ("suspected", None, "provisional", "active"),
    ("clinical", None, "confirmed", "active"),
    ("confirmed", None, "confirmed", "active"),
    ("clinical", "duplicate", "entered-in-error", None),
    ("clinical", "other", "entered-in-error", None),
    ("clinical", "misreport", "refuted", "inactive"),
])
def test_the_verification_status_follows_the_case_class_and_the_deletion(session, w, case_class, deletion,
                                                                          verification, clinical):
    view = report(session, w, adult(w, case_class=case_class))
    if deletion:
        view = reporting.delete_card(session, w.doctor, view.id, delete_type=deletion, reason="核实", now=NOW)
    mapped = strict(prune(condition_to_fhir(view, now=NOW)))
    assert mapped["verificationStatus"]["coding"][0]["code"] == verification
    assert (mapped.get("clinicalStatus") or {}).get("coding", [{}])[0].get("code") == clinical


def test_a_correction_shows_the_new_disease_with_the_first_one_as_corrected_from(session, w):
    view = report(session, w)
    fixed = reporting.correct_card(session, w.doctor, view.id, changes={"disease": "3900", "subtype": None},
                                   reason="排除菌痢", now=NOW + timedelta(hours=30))
    mapped = strict(prune(condition_to_fhir(fixed, now=NOW + timedelta(hours=30))))
    ext = {e["url"]: e for e in mapped["extension"]}
    assert ext[EXT["corrected-from"]]["valueCoding"]["code"] == "0400"
    assert ext[EXT["case-report-type"]]["valueCode"] == "correction"
    assert mapped["code"]["coding"][-1]["code"] == "3900" and mapped["meta"]["versionId"] == "2"
    clocks = {e["url"]: e for e in ext[EXT["case-report-clocks"]]["extension"]}
    assert clocks["review-due"]["valueDateTime"] == "2025-03-10T20:00:00+08:00"


# -- over HTTP -----------------------------------------------------------------------------------


def ids(bundle: dict) -> list[int]:
    return [int(e["resource"]["id"]) for e in bundle.get("entry", [])]


def test_read_and_every_search_parameter(client, session, w):
    first = report(session, w, patient_id=w.patient.id)
    flu = report(session, w, adult(w, disease="3500", subtype=None, case_class="suspected",
                                   onset_date=date(2025, 3, 7)), now=NOW + timedelta(days=1))
    gone = report(session, w, adult(w, disease="0200", subtype=None, case_class="confirmed", id_number="E7654321",
                                    id_type="passport"))
    reporting.delete_card(session, w.doctor, gone.id, delete_type="misreport", reason="排除", now=NOW)
    session.commit()
    read = client.get(f"/fhir/Condition/{first.id}", headers=FHIR)
    assert read.status_code == 200 and read.json()["identifier"][0] == {"system": CARD_SYSTEM,
                                                                       "value": first.card_number}
    strict(read.json())
    assert client.get("/fhir/Condition/999999", headers=FHIR).status_code == 404

    def search(query: str) -> list[int]:
        answer = client.get(f"/fhir/Condition?{query}", headers=FHIR)
        assert answer.status_code == 200, answer.text
        return sorted(ids(answer.json()))

    assert search(f"patient=Patient/{w.patient.id}") == [first.id, flu.id]  # linked through the ID number
    assert search(f"subject={w.patient.id}&patient=Patient/{w.patient.id}") == [first.id, flu.id]
    assert search("code=A03.9") == [first.id] and search(f"code={NIDRIS_SYSTEM}|0400") == [first.id]
    assert search("code=0401") == [first.id] and search("code=J10.1") == [flu.id]
    assert search(f"code={ICD10_CN_SYSTEM}|I10") == [] and search("code=http://loinc.org|0400") == []
    assert search("recorded-date=2025-03-09") == [flu.id]
    assert search("recorded-date=ge2025-03-08&recorded-date=lt2025-03-09") == [first.id, gone.id]
    assert search("onset-date=2025-03-07") == [flu.id] and search("onset-date=le2025-03") == [first.id, flu.id,
                                                                                             gone.id]
    assert search("verification-status=provisional") == [flu.id]
    assert search("verification-status=confirmed") == [first.id] and search("verification-status=refuted") == [
        gone.id]
    assert search(f"_id={first.id},{gone.id}") == [first.id, gone.id]
    page = client.get("/fhir/Condition?_count=2", headers=FHIR).json()
    assert len(page["entry"]) == 2 and any(link["relation"] == "next" for link in page["link"])
    assert client.get("/fhir/Condition?status=active", headers=FHIR).status_code == 400
    assert client.get("/fhir/Condition?recorded-date=2025-03-08T10:00", headers=FHIR).status_code == 400


def test_a_token_of_another_countys_cdc_sees_none_of_these_cards(secure_client, session, w):
    card = report(session, w)
    tokens = {who: security.create_token(session, SYS, user_id=actor.user_id, name="fhir tests").token
              for who, actor in (("cdc", w.cdc), ("cdc2", w.cdc2))}
    session.commit()

    def get(path: str, who: str):
        return secure_client.get(path, headers={**FHIR, "authorization": f"Bearer {tokens[who]}"})

    assert ids(get("/fhir/Condition", "cdc").json()) == [card.id]
    assert ids(get("/fhir/Condition", "cdc2").json()) == []
    refused = get(f"/fhir/Condition/{card.id}", "cdc2")
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"


def test_a_masked_reader_sees_the_subject_display_masked(session, w):
    view = report(session, w, adult(w, id_number="E1234567", id_type="passport"))
    token = replace(w.doctor, token_perms=frozenset({"surveillance.report", "registry.read"}))
    listed = reporting.search_cards(session, token, reporting.CardQuery(), now=NOW)
    assert prune(condition_to_fhir(listed[0], now=NOW))["subject"] == {"display": "王**"} and listed[0].id == view.id
