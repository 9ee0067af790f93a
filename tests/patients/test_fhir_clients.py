"""Real FHIR clients against the live server (uvicorn, the generated tiny region, the demo
clinician's API token): fhirpy creates a Patient, finds it by identifier and by name,
updates it and runs $match; fhirclient (strict R4 models) reads it and parses the
CapabilityStatement that now declares Patient's writes and $match."""

from __future__ import annotations

from datetime import date

import pytest
from fhirclient import client as smart_client
from fhirclient.models.patient import Patient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome
from tests.factories import resident_id

from healthgrid.patients.fhir import MATCH_GRADE, RESIDENT_ID_SYSTEM

RID = resident_id(date(1971, 3, 9), seq=357, county="110105")  # odd sequence: a man


@pytest.fixture(scope="module")
def fhirpy_client(live_server, live_token) -> SyncFHIRClient:
    return SyncFHIRClient(live_server + "/fhir", authorization=f"Bearer {live_token}")


@pytest.fixture(scope="module")
def smart(live_server, live_token):
    client = smart_client.FHIRClient(settings={"app_id": "hg", "api_base": live_server + "/fhir"})
    client.server.session.headers["Authorization"] = f"Bearer {live_token}"
    return client


@pytest.fixture(scope="module")
def created(fhirpy_client):
    patient = fhirpy_client.resource(
        "Patient", identifier=[{"system": RESIDENT_ID_SYSTEM, "value": RID}], name=[{"text": "司马志远"}],
        gender="male", birthDate="1971-03-09", telecom=[{"system": "phone", "value": "13655501234"}])
    patient.save()  # POST /Patient
    return patient


def test_fhirpy_creates_a_patient_at_the_clinicians_hospital(created):
    assert created.id
    assert created["meta"]["versionId"] == "1"
    assert created["managingOrganization"]["reference"].startswith("Organization/")  # the demo clinician's
    assert [n["text"] for n in created["name"]] == ["司马志远", "Sima Zhiyuan"]


def test_fhirpy_finds_it_by_identifier_and_by_name(fhirpy_client, created):
    by_id = fhirpy_client.resources("Patient").search(identifier=f"{RESIDENT_ID_SYSTEM}|{RID}").get()
    assert by_id.id == created.id
    assert fhirpy_client.resources("Patient").search(identifier=RID).get().id == created.id
    for name in ("司马志远", "sima zhiyuan", "simazhiyuan"):
        found = fhirpy_client.resources("Patient").search(name=name).fetch_all()
        assert [p.id for p in found] == [created.id], name


def test_fhirclient_reads_it_with_strict_r4_models(smart, created):
    assert smart.prepare()  # /metadata parsed with strict R4 models, Patient's writes and $match included
    declared = {r.type: r for r in smart.server.capabilityStatement.rest[0].resource}["Patient"]
    assert {i.code for i in declared.interaction} == {"read", "search-type", "create", "update"}
    assert [o.name for o in declared.operation] == ["match"]
    patient = Patient.read(created.id, smart.server)
    assert patient.name[0].text == "司马志远" and patient.name[0].family == "司马"
    assert (patient.gender, patient.birthDate.isostring) == ("male", "1971-03-09")
    assert patient.identifier[0].system == RESIDENT_ID_SYSTEM and patient.identifier[0].value == RID


def test_fhirpy_updates_it_and_runs_match(fhirpy_client, created):
    patient = fhirpy_client.reference("Patient", created.id).to_resource()
    patient["telecom"] = [{"system": "phone", "value": "13655509999"}]
    patient.save()  # PUT /Patient/{id}
    assert patient["meta"]["versionId"] == "2"
    bundle = fhirpy_client.resources("Patient").execute("$match", data={
        "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
            "resourceType": "Patient", "name": [{"text": "司马志远"}], "gender": "male", "birthDate": "1971-03-09",
            "telecom": [{"system": "phone", "value": "13655509999"}]}}]})
    top = bundle["entry"][0]
    assert top["resource"]["id"] == created.id
    assert top["search"]["extension"][0] == {"url": MATCH_GRADE, "valueCode": "certain"}


def test_fhirpy_sees_the_coded_refusals(fhirpy_client):
    with pytest.raises(OperationOutcome) as caught:
        fhirpy_client.resources("Patient").search(gender="male").fetch()
    assert caught.value.resource["issue"][0]["details"]["coding"][0]["code"] == "PAT-013"
    with pytest.raises(OperationOutcome) as caught:
        fhirpy_client.resource("Patient", name=[{"text": "周桂兰"}], gender="other").save()
    assert caught.value.resource["issue"][0]["details"]["coding"][0]["code"] == "PAT-070"
