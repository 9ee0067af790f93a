"""Real FHIR clients against the live server (uvicorn, the generated tiny region, the demo
clinician's API token). Two referrals of a patient registered at the clinician's facility
are sent from there to another hospital through the service first; then fhirpy reads the
ServiceRequest and the Task and searches both by patient, and fhirclient (strict R4
models) reads them and searches the Tasks by patient."""

from __future__ import annotations

from datetime import date

import pytest
from fhirclient import client as smart_client
from fhirclient.models.servicerequest import ServiceRequest
from fhirclient.models.task import Task
from fhirpy import SyncFHIRClient
from tests.conftest import SESSION_INFO
from tests.factories import SYS, resident_id

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.patients import service as patients
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.registry import queries as registry_queries
from healthgrid.security import service as security


@pytest.fixture(scope="module")
def referral_world(region_url):
    """At the demo clinician's facility: a patient (odd sequences of the other client tests
    are taken) with one referral waiting and one cancelled, both to another hospital."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            org_id = security.user_by_name(s, "demo-clinician").org_id
            site = registry_queries.search_practice_sites(s, org_ids=[org_id], limit=1).items[0].site
            to_org = next(h for h in registry_queries.hospital_ids(s) if h != org_id)
            born = date(1961, 4, 8)
            patient = patients.register_patient(s, SYS, org_id=org_id, data=patients.PatientIn(
                name="慕容秀兰", sex="F", birth_date=born, resident_id=resident_id(born, seq=842, county="110105"))
            ).patient.id
            sent = [referrals.create_referral(s, SYS, referrals.ReferralIn(
                patient_id=patient, from_org_id=org_id, to_org_id=to_org, from_practitioner_id=site.practitioner_id,
                diagnoses=[{"code": "I10", "name": "原发性高血压"}], reason_text=reason)).id
                for reason in ("血压控制不满意", "需进一步检查")]
            ref_workflow.cancel_referral(s, SYS, sent[1], reason="患者选择就近治疗")
            s.commit()
            return {"patient": patient, "waiting": str(sent[0]), "cancelled": str(sent[1]), "to_org": to_org,
                    "doctor": site.practitioner_id}
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


def test_fhirpy_reads_and_searches_service_requests_and_tasks(fhirpy_client, referral_world):
    w = referral_world
    request = fhirpy_client.reference("ServiceRequest", w["waiting"]).to_resource()
    assert (request["status"], request["intent"], request["subject"]["reference"]) == (
        "active", "order", f"Patient/{w['patient']}")
    assert request["category"][0]["coding"][0]["code"] == "3457005"
    assert request["requester"]["reference"] == f"Practitioner/{w['doctor']}"
    assert request["performer"][0]["reference"] == f"Organization/{w['to_org']}"
    task = fhirpy_client.reference("Task", w["cancelled"]).to_resource()
    assert (task["status"], task["statusReason"]["text"]) == ("cancelled", "患者选择就近治疗")
    assert task["focus"]["reference"] == f"ServiceRequest/{w['cancelled']}"

    mine = fhirpy_client.resources("ServiceRequest").search(patient=f"Patient/{w['patient']}").fetch_all()
    assert sorted(r.id for r in mine) == sorted([w["waiting"], w["cancelled"]])
    live = fhirpy_client.resources("ServiceRequest").search(patient=f"Patient/{w['patient']}", status="active")
    assert [r.id for r in live.fetch_all()] == [w["waiting"]]
    tasks = fhirpy_client.resources("Task").search(patient=f"Patient/{w['patient']}", status="cancelled").fetch_all()
    assert [t.id for t in tasks] == [w["cancelled"]]


def test_fhirclient_parses_service_requests_and_tasks(smart, referral_world):
    w = referral_world
    assert smart.prepare()  # /metadata parsed with strict R4 models
    declared = {r.type for r in smart.server.capabilityStatement.rest[0].resource}
    assert {"ServiceRequest", "Task"} <= declared
    strict = ServiceRequest.read(w["waiting"], smart.server)
    assert (strict.status, strict.priority, strict.subject.reference) == ("active", "routine",
                                                                           f"Patient/{w['patient']}")
    assert strict.reasonCode[0].coding[0].code == "I10"
    task = Task.read(w["waiting"], smart.server)
    assert (task.status, task.businessStatus.coding[0].code, task.owner.reference) == (
        "requested", "submitted", f"Organization/{w['to_org']}")
    search = Task.where(struct={"patient": f"Patient/{w['patient']}"})
    found = list(search.perform_resources_iter(smart.server))
    assert sorted(t.id for t in found) == sorted([w["waiting"], w["cancelled"]])
    assert {t.status for t in found} == {"requested", "cancelled"}
