"""POST /fhir with transaction and batch Bundles of results, and the single-resource create and
update the providers call: all or none for a transaction with a response Bundle of locations,
per report for a batch, an OperationOutcome naming the element and nothing stored for a bad
Bundle, the same Bundle twice answered once, the sender's scope; and a real FHIR client
(fhirpy) posting a transaction to the live server and reading it back."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from fhirclient import client as smart_client
from fhirpy import SyncFHIRClient
from sqlalchemy import select
from tests.conftest import SESSION_INFO
from tests.factories import SYS, resident_id
from tests.results.ingest_world import count, lab_bundle, make_hubei

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.errors import Conflict, Invalid
from healthgrid.results.fhir.ingest import create_resource, update_resource
from healthgrid.results.models import Message, Observation, Report
from healthgrid.security import service as security

FHIR = {"content-type": "application/fhir+json"}


@pytest.fixture
def hubei(session):
    return make_hubei(session)


def post(client, bundle, **kw):
    return client.post("/fhir", json=bundle, headers={**FHIR, **kw.pop("headers", {})}, **kw)


def test_a_transaction_writes_everything_and_answers_each_entry(client, session, hubei):
    r = post(client, lab_bundle(org_id=hubei.first.id))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    locations = [e["response"]["location"] for e in body["entry"]]
    assert statuses == ["201 Created"] * 4
    assert locations[0].startswith("Patient/") and locations[1].endswith("/_history/1")
    report_id = int(locations[1].split("/")[1])
    row = session.get(Report, report_id)
    assert (row.filler_number, row.issuer_org_id, row.status, row.patient_id) == (
        "F-100", hubei.first.id, "final", int(locations[0].split("/")[1]))
    obs_ids = sorted(int(x.split("/")[1]) for x in locations[2:])
    assert sorted(session.scalars(select(Observation.id).where(Observation.report_id == report_id))) == obs_ids
    assert session.get(Observation, obs_ids[0]).item == "K"
    assert session.scalar(select(Message).where(Message.control_id == "urn:healthgrid:test|B-1")).kind == \
        "fhir_bundle"


def test_the_same_bundle_twice_is_answered_as_the_first_and_writes_nothing(client, session, hubei):
    first = post(client, lab_bundle(org_id=hubei.first.id)).json()
    rows = (count(session, Report), count(session, Observation), count(session, Message))
    again = post(client, lab_bundle(org_id=hubei.first.id)).json()
    assert [e["response"]["location"] for e in again["entry"]] == [e["response"]["location"] for e in first["entry"]]
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
    assert (count(session, Report), count(session, Observation), count(session, Message)) == rows


def test_a_malformed_transaction_stores_nothing_and_names_each_element(client, session, hubei):
    bundle = lab_bundle(org_id=hubei.first.id)
    bundle["entry"][3]["resource"]["valueQuantity"]["value"] = "abc"
    bundle["entry"][1]["resource"]["result"].append({"reference": "urn:uuid:missing"})
    r = post(client, bundle)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    issues = {(i["details"]["coding"][0]["code"], i["expression"][0]) for i in r.json()["issue"]}
    assert ("RES-200", "Bundle.entry[3].resource.valueQuantity.value") in issues
    assert ("RES-202", "Bundle.entry[1].resource.Observation") in issues
    assert count(session, Report) == count(session, Observation) == 0
    kept = session.scalars(select(Message)).all()
    assert [m.status for m in kept] == ["rejected"] and kept[0].org_id == hubei.first.id


def test_a_transaction_refused_by_a_rule_is_all_or_none(client, session, hubei):
    post(client, lab_bundle(org_id=hubei.first.id, ident="B-a", filler="F-7"))
    second = lab_bundle(org_id=hubei.first.id, ident="B-b", filler="F-8")
    other = lab_bundle(org_id=hubei.first.id, filler="F-7", values=(("2823-3", "钾", 9.9),))
    for e in other["entry"][1:]:
        e["fullUrl"] = e["fullUrl"] + "-x"
    other["entry"][1]["resource"]["result"] = [{"reference": o["fullUrl"]} for o in other["entry"][2:]]
    second["entry"] += other["entry"][1:]  # F-8 is new, F-7 changes a final report without correcting it
    r = post(client, second)
    assert r.status_code == 409
    assert [i["details"]["coding"][0]["code"] for i in r.json()["issue"]] == ["RES-193"]
    assert session.scalar(select(Report).where(Report.filler_number == "F-8")) is None


def test_a_batch_writes_the_reports_that_pass_and_answers_the_others(client, session, hubei):
    good = lab_bundle(kind="batch", ident="B-batch", org_id=hubei.first.id, filler="F-ok")
    bad = lab_bundle(org_id=hubei.first.id, filler="F-bad")
    for e in bad["entry"][1:]:
        e["fullUrl"] += "-b"
        e["resource"]["subject"] = {"reference": "urn:uuid:pat-1"}
    bad["entry"][1]["resource"]["result"] = [{"reference": o["fullUrl"]} for o in bad["entry"][2:]]
    bad["entry"][1]["resource"]["category"] = [{"coding": [{"code": "XYZ"}]}]
    del bad["entry"][2]["resource"]["valueQuantity"]
    good["entry"] += bad["entry"][1:]
    r = post(client, good)
    assert r.status_code == 200 and r.json()["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[:4] == ["201 Created"] * 4 and statuses[4:] == ["422 Unprocessable Entity"] * 3
    outcome = r.json()["entry"][5]["response"]["outcome"]
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "RES-207"
    assert [x.filler_number for x in session.scalars(select(Report))] == ["F-ok"]
    assert sorted(m.status for m in session.scalars(select(Message))) == ["accepted", "rejected"]


def test_what_is_not_a_results_bundle_is_refused_by_the_platform(client, hubei):
    r = client.post("/fhir", json={"resourceType": "Patient"}, headers=FHIR)
    assert r.status_code == 400 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "FHIR-030"
    r = post(client, {**lab_bundle(), "type": "collection"})
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "FHIR-030"
    r = post(client, {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Condition"}, "resource": {"resourceType": "Condition",
                                                                          "subject": {"reference": "Patient/1"}}}]})
    assert r.status_code == 422 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "FHIR-031"
    r = client.get("/fhir")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_the_capability_statement_declares_transaction_and_batch(client):
    rest = client.get("/fhir/metadata").json()["rest"][0]
    assert rest["interaction"] == [{"code": "transaction"}, {"code": "batch"}]


def test_a_facility_may_post_only_its_own_results(secure_client, session, hubei):
    from healthgrid.security import service as sec

    user = sec.user_by_name(session, "ris-renmin")
    token = sec.create_token(session, SYS, user_id=user.id, name="ris").token
    r = post(secure_client, lab_bundle(org_id=hubei.first.id), headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "SEC-103"
    mine = lab_bundle(org_id=None, ident="B-own")  # no performer: the token's own organisation issues it
    r = post(secure_client, mine, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert session.scalar(select(Report).where(Report.filler_number == "F-100")).issuer_org_id == hubei.renmin.id


# -- one resource: create_resource / update_resource -------------------------------------------------

def test_create_and_update_one_resource_through_the_pipeline(session, hubei):
    bundle = lab_bundle(org_id=hubei.first.id)
    report = copy.deepcopy(bundle["entry"][1]["resource"])
    report["contained"] = [{**copy.deepcopy(bundle["entry"][0]["resource"]), "id": "p"}]
    for i, e in enumerate(bundle["entry"][2:]):
        report["contained"].append({**copy.deepcopy(e["resource"]), "id": f"o{i}", "subject": {"reference": "#p"}})
    report["subject"] = {"reference": "#p"}
    report["result"] = [{"reference": "#o0"}, {"reference": "#o1"}]
    report_id = create_resource(session, hubei.admin_first, "DiagnosticReport", report)
    row = session.get(Report, report_id)
    obs = sorted(session.scalars(select(Observation.id).where(Observation.report_id == report_id)))
    assert row.filler_number == "F-100" and len(obs) == 2
    # an observation corrected alone: the report becomes a correction, the other result stays
    k = copy.deepcopy(report["contained"][1])
    del k["id"]
    k.update(status="corrected", valueQuantity={"value": 3.1, "unit": "mmol/L"},
             subject={"reference": f"Patient/{row.patient_id}"})
    assert update_resource(session, hubei.admin_first, "Observation", obs[0], {**k, "id": str(obs[0])}) == obs[0]
    session.expire_all()
    assert (session.get(Observation, obs[0]).value_num, session.get(Report, report_id).status) == (3.1, "corrected")
    assert session.get(Observation, obs[1]).status == "final"
    # the report sent back with its stored results keeps them
    again = {k: v for k, v in report.items() if k not in ("contained", "subject")}
    again.update(status="amended", conclusion="复核", result=[{"reference": f"Observation/{i}"} for i in obs])
    assert update_resource(session, hubei.admin_first, "DiagnosticReport", report_id, again) == report_id
    session.expire_all()
    assert session.get(Report, report_id).conclusion == "复核"
    assert {session.get(Observation, i).status for i in obs} == {"corrected", "final"}


def test_one_resource_refused_raises_the_coded_error_naming_the_element(session, hubei):
    obs = copy.deepcopy(lab_bundle()["entry"][2]["resource"])
    obs["subject"] = {"reference": "Patient/999999"}
    with pytest.raises(Invalid) as refused:
        create_resource(session, hubei.admin_first, "Observation", obs)
    assert refused.value.code == "RES-206"
    obs["identifier"] = [{"value": "R-1"}]
    with pytest.raises(Invalid) as unknown:
        create_resource(session, hubei.admin_first, "Observation", obs)
    assert unknown.value.code == "RES-198" and unknown.value.detail["field"] == "Observation.subject.reference"
    assert count(session, Report) == 0 and count(session, Message) == 2  # both kept as rejected


def test_a_released_report_updated_without_correction_is_a_conflict(client, session, hubei):
    located = post(client, lab_bundle(org_id=hubei.first.id)).json()["entry"][1]["response"]["location"]
    report_id = int(located.split("/")[1])
    changed = copy.deepcopy(lab_bundle()["entry"][1]["resource"])
    changed.update(conclusion="改", result=[])
    del changed["subject"]
    with pytest.raises(Conflict) as refused:
        update_resource(session, hubei.admin_first, "DiagnosticReport", report_id, {**changed, "id": str(report_id)})
    assert refused.value.code == "RES-193"


# -- a real client against the live server -------------------------------------------------------------

@pytest.fixture(scope="module")
def live_lab(region_url):
    """The demo clinician's facility: its LIS integration (a facility administrator's token)."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            org_id = security.user_by_name(s, "demo-clinician").org_id
            user = security.create_user(s, SYS, username="lis-live-fhir", display_name="LIS", password="Lis-pass-1234",
                                        grants=[security.parse_grant("facility_admin", "organization", org_id)],
                                        org_id=org_id)
            token = security.create_token(s, SYS, user_id=user.id, name="LIS feed").token
            s.commit()
            return {"org_id": org_id, "token": token}
    finally:
        eng.dispose()


def test_fhirpy_posts_a_transaction_and_reads_it_back(live_server, live_token, live_lab):
    feed = SyncFHIRClient(live_server + "/fhir", authorization=f"Bearer {live_lab['token']}")
    rid = resident_id(date(1966, 2, 3), seq=618, county="110105")
    bundle = lab_bundle(org_id=live_lab["org_id"], ident="live-1", filler="LIVE-F-1", rid=rid, born="1966-02-03",
                        name=("欧阳", "春梅"))
    answer = feed.execute("", method="post", data=bundle)
    assert answer["type"] == "transaction-response"
    locations = [e["response"]["location"] for e in answer["entry"]]
    report_id = locations[1].split("/")[1]
    doctor = SyncFHIRClient(live_server + "/fhir", authorization=f"Bearer {live_token}")
    report = doctor.reference("DiagnosticReport", report_id).to_resource()
    assert report["status"] == "final" and report["subject"]["reference"] == locations[0]
    assert sorted(r["reference"] for r in report["result"]) == sorted(locations[2:])
    potassium = doctor.reference("Observation", locations[2].split("/")[1]).to_resource()
    assert potassium["valueQuantity"]["value"] == 4.1
    again = feed.execute("", method="post", data=bundle)
    assert [e["response"]["location"] for e in again["entry"]] == locations


def test_fhirclient_sees_the_transaction_interaction_and_posts_a_bundle(live_server, live_lab):
    smart = smart_client.FHIRClient(settings={"app_id": "hg", "api_base": live_server + "/fhir"})
    smart.server.session.headers["Authorization"] = f"Bearer {live_lab['token']}"
    assert smart.prepare()
    rest = smart.server.capabilityStatement.rest[0]
    assert {i.code for i in rest.interaction} == {"transaction", "batch"}
    bad = lab_bundle(org_id=live_lab["org_id"], ident="live-bad", filler="LIVE-F-2")
    bad["entry"][2]["resource"]["code"] = {"coding": [{"system": "http://loinc.org"}]}
    response = smart.server.session.post(live_server + "/fhir", json=bad,
                                         headers={"Content-Type": FHIR["content-type"]})
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[2].resource.code"]


def test_an_imaging_study_is_indexed_updated_and_kept_to_its_patient(session, hubei):
    from healthgrid.results.models import ImagingStudy

    bundle = lab_bundle(org_id=hubei.renmin.id)
    report = create_resource(session, hubei.admin_renmin, "DiagnosticReport", {
        **bundle["entry"][1]["resource"], "result": [], "status": "final",
        "contained": [{**bundle["entry"][0]["resource"], "id": "p"}], "subject": {"reference": "#p"}})
    patient_id = session.get(Report, report).patient_id
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": f"Patient/{patient_id}"},
             "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.156.9.9.1"}],
             "modality": [{"code": "CT"}], "numberOfSeries": 1, "numberOfInstances": 30}
    study_id = create_resource(session, hubei.admin_renmin, "ImagingStudy", study)
    row = session.get(ImagingStudy, study_id)
    assert (row.study_uid, row.patient_id, row.issuer_org_id, row.instance_count) == (
        "1.2.156.9.9.1", patient_id, hubei.renmin.id, 30)
    assert update_resource(session, hubei.admin_renmin, "ImagingStudy", study_id,
                           {**study, "id": str(study_id), "numberOfInstances": 31}) == study_id
    session.expire_all()
    assert session.get(ImagingStudy, study_id).instance_count == 31
    other = create_resource(session, hubei.admin_first, "DiagnosticReport", {
        **lab_bundle(org_id=hubei.first.id, filler="F-other", rid=resident_id(date(1990, 5, 5), seq=556,
                                                                               county="420102"),
                     name=("孙", "丽"), born="1990-05-05")["entry"][1]["resource"], "result": [],
        "contained": [{**lab_bundle(rid=resident_id(date(1990, 5, 5), seq=556, county="420102"), name=("孙", "丽"),
                                    born="1990-05-05")["entry"][0]["resource"], "id": "p"}],
        "subject": {"reference": "#p"}})
    thief = {**study, "subject": {"reference": f"Patient/{session.get(Report, other).patient_id}"}}
    with pytest.raises(Conflict) as refused:
        create_resource(session, hubei.admin_renmin, "ImagingStudy", thief)
    assert refused.value.code == "RES-197"
