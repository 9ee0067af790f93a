"""FHIR R4 DiagnosticReport, Observation and ImagingStudy: golden JSON (also parsed by
fhirclient's strict R4 models), every search parameter, ``_include``, counted paging, the
refusals and masking real users meet, and the real clients fhirpy and fhirclient reading and
searching against the live server."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest
from fhirclient import client as smart_client
from fhirclient.models.diagnosticreport import DiagnosticReport
from fhirclient.models.imagingstudy import ImagingStudy
from fhirclient.models.observation import Observation
from fhirpy import SyncFHIRClient
from tests.conftest import SESSION_INFO
from tests.factories import SYS, resident_id
from tests.results.results_world import LOINC, make_results, make_world

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.patients import service as patients
from healthgrid.registry import queries as registry_queries
from healthgrid.security import service as security

LOCAL = "https://healthgrid.example/fhir/NamingSystem/"
ITEM = "urn:healthgrid:results:item"


@pytest.fixture
def world(session):
    return make_world(session)


def ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def code_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["issue"][0]["details"]["coding"][0]["code"]


# -- golden JSON -----------------------------------------------------------------------------------

def golden_report(w) -> dict:
    r = w.results
    return {
        "resourceType": "DiagnosticReport", "id": str(r.reports["hba1c1"]),
        "meta": {"versionId": "1"},
        "extension": [{"url": "https://healthgrid.example/fhir/StructureDefinition/recognition-mark",
                       "valueCoding": {"system": "https://healthgrid.example/fhir/CodeSystem/recognition-mark",
                                       "code": "HR"}}],
        "identifier": [
            {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                  "code": "FILL"}]},
             "system": f"{LOCAL}93-THC1-report", "value": "93-A1C-1"},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
             "system": f"{LOCAL}93-CH1-order", "value": "93-ORD-1"}],
        "status": "final",
        "category": [{"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB", "display": "Laboratory"},
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory",
             "display": "Laboratory"}]}],
        "code": {"coding": [{"system": f"{LOCAL}93-THC1-lab", "code": "GHB", "display": "糖化血红蛋白"},
                            {"system": LOINC, "code": "4548-4"},
                            {"system": ITEM, "code": "HBA1C", "display": "糖化血红蛋白"}], "text": "糖化血红蛋白"},
        "subject": {"reference": f"Patient/{w.patient}", "display": "欧阳秀英"},
        "effectiveDateTime": "2025-04-12T12:00:00+08:00",
        "issued": "2025-04-12T15:00:00+08:00",
        "performer": [{"reference": f"Organization/{r.township_id}", "display": "清河镇卫生院"}],
        "result": [{"reference": f"Observation/{r.observations['hba1c1']}", "display": "糖化血红蛋白"}],
    }


def golden_observation(w) -> dict:
    r = w.results
    quantity = {"system": "http://unitsofmeasure.org", "code": "mg/dL", "unit": "mg/dL"}
    return {
        "resourceType": "Observation", "id": str(r.observations["crea_mgdl"]),
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": f"{LOCAL}93-THC1-lab", "code": "CR01", "display": "肌酐"},
                            {"system": LOINC, "code": "14682-9"},
                            {"system": ITEM, "code": "CREA", "display": "肌酐"}], "text": "肌酐"},
        "subject": {"reference": f"Patient/{w.patient}", "display": "欧阳秀英"},
        "effectiveDateTime": "2025-04-12T13:00:00+08:00",
        "issued": "2025-04-12T16:00:00+08:00",
        "performer": [{"reference": f"Organization/{r.township_id}", "display": "清河镇卫生院"}],
        "valueQuantity": {"value": 1.3, **quantity},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                        "code": "H", "display": "High"}]}],
        "referenceRange": [{"low": {"value": 0.6, **quantity}, "high": {"value": 1.1, **quantity}}],
    }


def golden_study(w) -> dict:
    r = w.results
    return {
        "resourceType": "ImagingStudy", "id": str(r.study_id),
        "contained": [{"resourceType": "Endpoint", "id": "dicomweb", "status": "active",
                       "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                                          "code": "dicom-wado-rs"},
                       "name": "永宁县人民医院 DICOMweb",
                       "managingOrganization": {"reference": f"Organization/{r.hospital_id}"},
                       "payloadType": [{"text": "DICOM"}], "payloadMimeType": ["application/dicom"],
                       "address": "http://127.0.0.1:9/dicom-web"}],
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{r.study_uid}"},
                       {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                             "code": "ACSN"}]},
                        "system": f"{LOCAL}93-CH1-accession", "value": "93CT1",
                        "assigner": {"reference": f"Organization/{r.hospital_id}"}}],
        "status": "available",
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
        "subject": {"reference": f"Patient/{w.patient}", "display": "欧阳秀英"},
        "started": "2025-07-15T14:00:00+08:00",
        "endpoint": [{"reference": "#dicomweb"}],
        "numberOfSeries": 1, "numberOfInstances": 24, "description": "头部CT平扫",
    }


@pytest.mark.parametrize(("path", "golden", "model"), [
    ("DiagnosticReport/{r[hba1c1]}", golden_report, DiagnosticReport),
    ("Observation/{o[crea_mgdl]}", golden_observation, Observation),
    ("ImagingStudy/{study}", golden_study, ImagingStudy),
])
def test_results_map_to_golden_json_valid_for_strict_r4_models(client, world, path, golden, model):
    made = world.results
    response = client.get("/fhir/" + path.format(r=made.reports, o=made.observations, study=made.study_id))
    assert response.status_code == 200
    body = response.json()
    body.get("meta", {}).pop("lastUpdated", None)
    if not body.get("meta"):
        body.pop("meta", None)
    assert body == golden(world)
    parsed = model(response.json(), strict=True)  # fhirclient: an unknown or mistyped element raises
    assert parsed.id == body["id"]
    if model is DiagnosticReport:
        assert response.headers["ETag"] == 'W/"1"'


def test_a_text_value_has_no_quantity_and_an_absent_value_says_why(client, world):
    hbsag = client.get(f"/fhir/Observation/{world.results.observations['hbsag']}").json()
    assert hbsag["valueString"] == "阴性" and "valueQuantity" not in hbsag
    assert hbsag["interpretation"][0]["coding"][0]["code"] == "N"


# -- search parameters -----------------------------------------------------------------------------

def _reports(w, *names: str) -> list[str]:
    return sorted(str(w.results.reports[n]) for n in names)


DR_CASES = [
    ({"code": f"{LOINC}|4548-4"}, ("hba1c0", "hba1c1", "hba1c2", "hba1c3")),  # the local-coded one by its item
    ({"code": "4548-4"}, ("hba1c0", "hba1c1", "hba1c2", "hba1c3")),
    ({"code": f"{LOCAL}93-THC1-lab|GHB"}, ("hba1c1",)),
    ({"code": f"{LOCAL}93-CH1-lab|GHB"}, ()),
    ({"code": f"{ITEM}|CBC,{ITEM}|CREA"}, ("cbc", "crea")),
    ({"category": "RAD"}, ("ct",)),
    ({"category": "http://terminology.hl7.org/CodeSystem/observation-category|imaging"}, ("ct",)),
    ({"category": "laboratory", "date": "2025-04"}, ("chem", "hba1c1")),
    ({"date": ["ge2025-07-01", "lt2025-10-21"]}, ("crea", "ct", "hba1c2", "hba1c3")),
    ({"issued": "2025-01-10"}, ("cbc", "hba1c0")),
    ({"date": "gt2025-10-20"}, ()),
    ({"status": "final"}, ("cbc", "chem", "crea", "ct", "hba1c0", "hba1c1", "hba1c2", "hba1c3")),
    ({"status": "amended,corrected"}, ()),
    ({"identifier": f"{LOCAL}93-CH1-report|93-CT-1"}, ("ct",)),
    ({"identifier": "93-CHEM-1"}, ("chem",)),
]


@pytest.mark.parametrize(("params", "expected"), DR_CASES)
def test_diagnostic_reports_are_searched_by_each_parameter(client, world, params, expected):
    items = [("patient", f"Patient/{world.patient}")]
    for key, value in params.items():
        items += [(key, v) for v in (value if isinstance(value, list) else [value])]
    bundle = client.get("/fhir/DiagnosticReport", params=items).json()
    assert sorted(ids(bundle)) == _reports(world, *expected)
    assert bundle["total"] == len(expected)


def test_performer_and_subject_narrow_the_search(client, world):
    r = world.results
    found = client.get("/fhir/DiagnosticReport", params={"subject": f"Patient/{world.patient}",
                                                         "performer": f"Organization/{r.township_id}"}).json()
    assert sorted(ids(found)) == _reports(world, "chem", "hba1c1")
    other = client.get("/fhir/DiagnosticReport", params={"patient": world.other_patient,
                                                         "subject": f"Patient/{world.patient}"}).json()
    assert other["total"] == 0


def test_observations_are_searched_by_code_category_status_and_date(client, world):
    o, p = world.results.observations, f"Patient/{world.patient}"

    def search(**kw) -> list[str]:
        return sorted(ids(client.get("/fhir/Observation", params={"patient": p, **kw}).json()))

    assert search(code=f"{LOINC}|14682-9") == sorted([str(o["crea"]), str(o["crea_mgdl"])])
    assert search(code=f"{LOINC}|718-7") == [str(o["hgb"])]
    assert search(status="cancelled") == [str(o["cancelled"])]
    assert search(category="imaging") == []
    assert search(date="2025-01-10") == sorted(str(o[k]) for k in ("hba1c0", "wbc", "hgb"))
    assert len(search(category="laboratory")) == 11


def test_imaging_studies_are_searched_by_uid_accession_modality_and_started(client, world):
    r, p = world.results, f"Patient/{world.patient}"
    for params in ({"identifier": f"urn:dicom:uid|urn:oid:{r.study_uid}"}, {"identifier": "93CT1"},
                   {"modality": "CT", "started": "2025-07-15"}, {"status": "available"}):
        assert ids(client.get("/fhir/ImagingStudy", params={"patient": p, **params}).json()) == [str(r.study_id)]
    for params in ({"modality": "MR"}, {"started": "2024"}, {"status": "cancelled"}):
        assert client.get("/fhir/ImagingStudy", params={"patient": p, **params}).json()["total"] == 0


# -- _include and paging -----------------------------------------------------------------------------

def test_include_adds_the_observations_and_the_patient_once(client, world):
    o, r = world.results.observations, world.results
    bundle = client.get("/fhir/DiagnosticReport", params=[
        ("patient", world.patient), ("issued", "2025-04-12"), ("_include", "DiagnosticReport:result"),
        ("_include", "DiagnosticReport:patient"), ("_include", "DiagnosticReport:performer")]).json()
    assert sorted(ids(bundle)) == _reports(world, "chem", "hba1c1") and bundle["total"] == 2
    included = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
                if e["search"]["mode"] == "include"]
    expected = {("Observation", str(o[k])) for k in ("hba1c1", "crea_mgdl", "glu_mgdl", "cancelled", "hbsag")}
    assert {x for x in included if x[0] == "Observation"} == expected
    assert [x for x in included if x[0] == "Patient"] == [("Patient", str(world.patient))]
    assert [x for x in included if x[0] == "Organization"] == [("Organization", str(r.township_id))]
    assert len(included) == len(set(included))


def test_observations_and_studies_include_their_patient(client, world):
    for path in ("Observation", "ImagingStudy"):
        bundle = client.get(f"/fhir/{path}", params={"patient": world.patient, "_include": f"{path}:patient"}).json()
        assert ids(bundle, "include") == [str(world.patient)]


def test_paging_follows_next_links_with_totals(client, world):
    url, seen = f"/fhir/DiagnosticReport?patient={world.patient}&_count=3&_include=DiagnosticReport:subject", []
    while url:
        bundle = client.get(url).json()
        assert bundle["total"] == 8
        seen += ids(bundle)
        assert ids(bundle, "include") == [str(world.patient)]  # each page includes what it refers to
        nxt = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        url = None if nxt is None else urlsplit(nxt).path + "?" + urlsplit(nxt).query
        if url:
            assert ("_include", "DiagnosticReport:subject") in parse_qsl(urlsplit(nxt).query)
    assert len(seen) == len(set(seen)) == 8
    counted = client.get("/fhir/Observation", params={"patient": world.patient, "_summary": "count"}).json()
    assert counted["total"] == 11 and "entry" not in counted


def test_includes_and_searches_that_cannot_run_are_operation_outcomes(client, world):
    p = world.patient
    assert code_of(client.get(f"/fhir/DiagnosticReport?patient={p}&_include=DiagnosticReport:based-on"),
                   400) == "FHIR-002"
    assert code_of(client.get(f"/fhir/DiagnosticReport?patient={p}&_include=Observation:patient"), 400) == "FHIR-002"
    assert code_of(client.get(f"/fhir/DiagnosticReport?patient={p}&_include:iterate=DiagnosticReport:result"),
                   400) == "FHIR-004"
    assert code_of(client.get(f"/fhir/DiagnosticReport?patient={p}&_include=DiagnosticReport:result:Patient"),
                   400) == "FHIR-002"
    assert code_of(client.get(f"/fhir/Observation?patient={p}&date=2025-01-10T09:00:00Z"), 400) == "FHIR-003"
    assert code_of(client.get(f"/fhir/Observation?patient={p}&status=done"), 400) == "FHIR-003"
    assert code_of(client.get(f"/fhir/ImagingStudy?patient={p}&_include=ImagingStudy:performer"), 400) == "FHIR-002"
    declared = client.get("/fhir/metadata").json()["rest"][0]["resource"]
    report = next(x for x in declared if x["type"] == "DiagnosticReport")
    assert report["searchInclude"] == ["DiagnosticReport:result", "DiagnosticReport:patient",
                                       "DiagnosticReport:subject", "DiagnosticReport:performer"]
    assert {p["name"] for p in report["searchParam"]} >= {"patient", "code", "date", "category", "status",
                                                          "performer", "identifier", "issued"}


# -- what real users see --------------------------------------------------------------------------------

def bearer(session, actor) -> dict:
    return {"Authorization": f"Bearer {security.create_token(session, SYS, user_id=actor.user_id, name='t').token}"}


def test_access_rules_hold_over_fhir(secure_client, session, world):
    r = world.results
    stranger, lis, nurse = (bearer(session, a) for a in (world.stranger, world.lis, world.nurse))
    assert code_of(secure_client.get(f"/fhir/DiagnosticReport/{r.reports['ct']}", headers=stranger), 403) == "SEC-104"
    assert code_of(secure_client.get(f"/fhir/Observation?patient={world.patient}", headers=stranger),
                   403) == "SEC-104"
    assert code_of(secure_client.get("/fhir/Observation?code=4548-4", headers=stranger), 400) == "RES-150"
    own = secure_client.get("/fhir/DiagnosticReport", params={"_include": "DiagnosticReport:patient",
                                                              "code": "4548-4"}, headers=lis).json()
    assert {e["resource"]["performer"][0]["reference"] for e in own["entry"] if e["search"]["mode"] == "match"} == {
        f"Organization/{r.hospital_id}"}
    outcomes = [e["resource"] for e in own["entry"] if e["search"]["mode"] == "outcome"]
    assert outcomes and all(o["issue"][0]["severity"] == "warning" for o in outcomes)  # no patient.read: left out
    assert not ids(own, "include")
    assert code_of(secure_client.get(f"/fhir/DiagnosticReport/{r.reports['chem']}", headers=lis), 403) == "SEC-102"
    masked = secure_client.get(f"/fhir/Observation/{r.observations['hgb']}", headers=nurse).json()
    assert masked["subject"]["display"] == "欧阳**" and masked["meta"]["security"][0]["code"] == "MASKED"


# -- real clients against the live server ------------------------------------------------------------

@pytest.fixture(scope="module")
def live_results(region_url):
    """At the demo clinician's facility: a registered patient and the hand-made year of results,
    the township's share issued by another facility of the generated region."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            org_id = security.user_by_name(s, "demo-clinician").org_id
            other_org = next(h for h in registry_queries.hospital_ids(s) if h != org_id)
            born = date(1963, 2, 14)
            ids_ = []
            for seq, name in ((846, "上官淑芬"), (848, "上官明珠")):
                ids_.append(patients.register_patient(s, SYS, org_id=org_id, data=patients.PatientIn(
                    name=name, sex="F", birth_date=born, resident_id=resident_id(born, seq=seq, county="110105"))
                ).patient.id)
            made = make_results(s, patient_id=ids_[0], hospital_id=org_id, township_id=other_org,
                                other_patient_id=ids_[1], tag="LIVE8")
            s.commit()
            return made
    finally:
        eng.dispose()


@pytest.fixture(scope="module")
def fhirpy_client(live_server, live_token) -> SyncFHIRClient:
    return SyncFHIRClient(live_server + "/fhir", authorization=f"Bearer {live_token}")


@pytest.fixture(scope="module")
def smart(live_server, live_token):
    client = smart_client.FHIRClient(settings={"app_id": "hg", "api_base": live_server + "/fhir"})
    client.server.session.headers["Authorization"] = f"Bearer {live_token}"
    return client


def test_fhirpy_reads_searches_includes_and_pages(fhirpy_client, live_results):
    made = live_results
    report = fhirpy_client.reference("DiagnosticReport", str(made.reports["ct"])).to_resource()
    assert report["conclusion"] == "颅内未见明显异常。"
    assert report["subject"]["reference"] == f"Patient/{made.patient_id}"
    search = fhirpy_client.resources("DiagnosticReport").search(patient=f"Patient/{made.patient_id}")
    assert search.count() == 8  # _count=0 and Bundle.total
    paged = search.limit(3).fetch_all()  # follows link[next]
    assert len({r.id for r in paged}) == 8
    a1c = fhirpy_client.resources("DiagnosticReport").search(patient=f"Patient/{made.patient_id}",
                                                              code=f"{LOINC}|4548-4").include(
        "DiagnosticReport", "result").fetch_raw()
    assert a1c["total"] == 4
    included = {e["resource"]["id"] for e in a1c["entry"] if e["search"]["mode"] == "include"}
    assert included == {str(made.observations[f"hba1c{n}"]) for n in range(4)}
    study = fhirpy_client.reference("ImagingStudy", str(made.study_id)).to_resource()
    assert study["contained"][0]["address"].endswith("/dicom-web")


def test_fhirclient_parses_reports_observations_and_studies(smart, live_results):
    made = live_results
    assert smart.prepare()  # /metadata with strict R4 models, searchInclude included
    declared = {r.type: r for r in smart.server.capabilityStatement.rest[0].resource}
    assert "DiagnosticReport:result" in declared["DiagnosticReport"].searchInclude
    report = DiagnosticReport.read(str(made.reports["hba1c1"]), smart.server)
    assert (report.status, report.code.coding[1].code, report.performer[0].reference) == (
        "final", "4548-4", f"Organization/{made.township_id}")
    value = Observation.read(str(made.observations["hba1c1"]), smart.server)
    assert (value.valueQuantity.value, value.valueQuantity.unit, value.interpretation[0].coding[0].code) == (
        58, "mmol/mol", "H")
    search = DiagnosticReport.where(struct={"patient": f"Patient/{made.patient_id}", "category": "RAD"}).include(
        "result")
    found = list(search.perform_resources_iter(smart.server))
    assert [r.id for r in found if r.resource_type == "DiagnosticReport"] == [str(made.reports["ct"])]
    study = ImagingStudy.read(str(made.study_id), smart.server)
    assert study.identifier[0].value == f"urn:oid:{made.study_uid}" and study.contained[0].address


# -- writes through the ingestion pipeline ------------------------------------------------------------

def _new_report(w, *, status: str = "final", value: float = 9.2) -> dict:
    return {"resourceType": "DiagnosticReport", "status": status,
            "identifier": [{"system": f"{LOCAL}93-CH1-report", "value": "93-A1C-NEW"}],
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
            "code": {"coding": [{"system": LOINC, "code": "4548-4", "display": "糖化血红蛋白"}]},
            "subject": {"reference": f"Patient/{w.patient}"},
            "performer": [{"reference": f"Organization/{w.results.hospital_id}"}],
            "effectiveDateTime": "2025-12-01T08:00:00+08:00", "issued": "2025-12-01T11:00:00+08:00",
            "contained": [{"resourceType": "Observation", "id": "a1c", "status": status,
                           "code": {"coding": [{"system": LOINC, "code": "4548-4", "display": "糖化血红蛋白"}]},
                           "subject": {"reference": f"Patient/{w.patient}"},
                           "effectiveDateTime": "2025-12-01T08:00:00+08:00",
                           "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org",
                                             "code": "%"},
                           "referenceRange": [{"low": {"value": 4.0}, "high": {"value": 6.0}}],
                           "interpretation": [{"coding": [{"code": "H"}]}]}],
            "result": [{"reference": "#a1c"}]}


def test_the_issuing_facility_creates_and_corrects_a_report_over_fhir(secure_client, session, world):
    lis = bearer(session, world.lis)
    made = secure_client.post("/fhir/DiagnosticReport", json=_new_report(world), headers=lis)
    assert made.status_code == 201, made.text
    report = made.json()
    assert made.headers["Location"].endswith(f"/DiagnosticReport/{report['id']}/_history/1")
    assert (report["status"], report["subject"]["reference"]) == ("final", f"Patient/{world.patient}")
    value = secure_client.get(f"/fhir/{report['result'][0]['reference']}", headers=lis).json()
    assert value["valueQuantity"]["value"] == 9.2 and value["interpretation"][0]["coding"][0]["code"] == "H"
    corrected = {**_new_report(world, status="corrected", value=8.2), "id": report["id"]}
    stale = secure_client.put(f"/fhir/DiagnosticReport/{report['id']}", json=corrected,
                              headers={**lis, "If-Match": 'W/"7"'})
    assert code_of(stale, 412) == "FHIR-016"
    answer = secure_client.put(f"/fhir/DiagnosticReport/{report['id']}", json=corrected,
                               headers={**lis, "If-Match": 'W/"1"'})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "corrected" and answer.json()["meta"]["versionId"] == "2"
    again = secure_client.get(f"/fhir/{answer.json()['result'][0]['reference']}", headers=lis).json()
    assert again["valueQuantity"]["value"] == 8.2
    other = secure_client.post("/fhir/DiagnosticReport", json=_new_report(world),
                               headers=bearer(session, world.township_lis))
    assert other.status_code == 403  # the township centre does not issue the county hospital's reports
