"""Real FHIR clients against the live server (uvicorn, the generated tiny region, the demo
clinician's API token). A doctor's schedule is made at the clinician's hospital through the
service first (the region needs none of its own); then fhirpy finds its free Slots by
search and by ``$find``, books one with ``$book``, reads the Appointment back and cancels it
with a PUT; fhirclient (strict R4 models) parses the CapabilityStatement, the Slots and the
Appointment."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fhirclient import client as smart_client
from fhirclient.models.appointment import Appointment
from fhirclient.models.slot import Slot
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome
from tests.conftest import SESSION_INFO
from tests.factories import SYS, resident_id

from healthgrid.db import make_engine, make_sessionmaker, utcnow
from healthgrid.patients import service as patients
from healthgrid.registry import queries as registry_queries
from healthgrid.scheduling import schedules, service
from healthgrid.security import service as security

PEOPLE = [("欧阳建华", "M", date(1984, 6, 2), 733), ("上官婉清", "F", date(1990, 2, 14), 734),
          ("诸葛明远", "M", date(1975, 9, 30), 735)]  # odd sequences: men


@pytest.fixture(scope="module")
def booking_world(region_url):
    """At the demo clinician's hospital: a doctor's schedule (every day, mornings, two web
    places per slot, no reserved share) opened from today, and a patient to book for."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            org_id = security.user_by_name(s, "demo-clinician").org_id
            site = registry_queries.search_practice_sites(s, org_ids=[org_id], limit=1).items[0].site
            today = service.local_day(s, utcnow())
            sched = schedules.create_schedule(s, SYS, schedules.ScheduleIn(
                org_id=org_id, name="FHIR 客户端测试门诊", practitioner_id=site.practitioner_id,
                department_id=site.department_id, reserve_ratio=0, open_days_ahead=7, channel_shares={"web": 1.0},
                templates=[schedules.TemplateIn(weekday=w, part="am", start="08:00", end="09:00", slot_minutes=30,
                                                per_slot=2) for w in range(7)]), today=today)
            people = [patients.register_patient(s, SYS, org_id=org_id, data=patients.PatientIn(
                name=name, sex=sex, birth_date=born, resident_id=resident_id(born, seq=seq, county="110105"))
            ).patient.id for name, sex, born, seq in PEOPLE]
            return {"schedule": sched.id, "org": org_id, "doctor": site.practitioner_id, "patient": people[0],
                    "people": people, "day": (today + timedelta(days=1)).isoformat(),
                    "later": (today + timedelta(days=2)).isoformat()}
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


def test_fhirpy_finds_books_reads_and_cancels(fhirpy_client, booking_world):
    w = booking_world
    slots = fhirpy_client.resources("Slot").search(schedule=f"Schedule/{w['schedule']}", status="free",
                                                   start=w["day"]).fetch_all()
    assert len(slots) == 2 and all(s["start"].startswith(w["day"]) for s in slots)
    found = fhirpy_client.resources("Appointment").execute("$find", method="get", params={
        "practitioner": f"Practitioner/{w['doctor']}", "schedule": f"Schedule/{w['schedule']}", "start": w["day"],
        "end": w["day"], "channel": "web"})
    assert [e["resource"]["id"] for e in found["entry"]] == [s.id for s in slots]

    booked = book(fhirpy_client, slots[0].id, w["patient"], key="fhirpy-book-1")
    assert booked["resourceType"] == "Appointment" and booked["status"] == "booked"

    appointment = fhirpy_client.reference("Appointment", booked["id"]).to_resource()
    assert appointment["slot"][0]["reference"] == f"Slot/{slots[0].id}"
    assert appointment["participant"][0]["actor"]["reference"] == f"Patient/{w['patient']}"
    assert appointment["participant"][2]["actor"]["reference"] == f"Location/site-{w['org']}"
    assert book(fhirpy_client, slots[0].id, w["patient"], key="fhirpy-book-1")["id"] == booked["id"]  # a retry
    mine = fhirpy_client.resources("Appointment").search(patient=f"Patient/{w['patient']}", date=w["day"])
    assert [a.id for a in mine.fetch_all()] == [booked["id"]]
    slot = fhirpy_client.reference("Slot", slots[0].id).to_resource()
    assert slot["status"] == "free"  # two places, one taken

    appointment["status"] = "cancelled"
    appointment["cancelationReason"] = {"text": "行程有变"}
    appointment.save()  # PUT /Appointment/{id}
    assert appointment["status"] == "cancelled" and appointment["meta"]["versionId"] == "2"


def book(client: SyncFHIRClient, slot_id: str, patient_id: int, key: str | None = None):
    parameter = [{"name": "slot", "valueReference": {"reference": f"Slot/{slot_id}"}},
                 {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}}]
    if key:
        parameter.append({"name": "idempotency-key", "valueString": key})
    return client.resources("Appointment").execute("$book", data={"resourceType": "Parameters",
                                                                  "parameter": parameter})


def test_fhirpy_sees_a_full_slot_as_an_operation_outcome(fhirpy_client, booking_world):
    w = booking_world
    slot = fhirpy_client.resources("Slot").search(schedule=f"Schedule/{w['schedule']}", start=w["later"]).first()
    for patient in w["people"][:2]:
        assert book(fhirpy_client, slot.id, patient)["status"] == "booked"
    assert fhirpy_client.reference("Slot", slot.id).to_resource()["status"] == "busy"
    with pytest.raises(OperationOutcome) as refused:
        book(fhirpy_client, slot.id, w["people"][2])
    assert "SCHED-002" in str(refused.value)


def test_fhirclient_parses_the_capabilities_slots_and_appointment(smart, fhirpy_client, booking_world):
    w = booking_world
    assert smart.prepare()  # /metadata parsed with strict R4 models
    declared = {r.type: r for r in smart.server.capabilityStatement.rest[0].resource}
    assert [o.name for o in declared["Appointment"].operation] == ["find", "book"]
    assert {"Schedule", "Slot"} <= set(declared)
    search = Slot.where(struct={"schedule": f"Schedule/{w['schedule']}", "start": w["day"]})
    slots = list(search.perform_resources_iter(smart.server))
    assert len(slots) == 2 and {s.status for s in slots} <= {"free", "busy"}
    slot = fhirpy_client.resources("Slot").search(schedule=f"Schedule/{w['schedule']}", start=w["day"],
                                                  status="free").first()
    booked = book(fhirpy_client, slot.id, w["people"][1], key="fhirclient-1")
    strict = Appointment.read(booked["id"], smart.server)
    assert (strict.status, strict.participant[0].actor.reference) == ("booked", f"Patient/{w['people'][1]}")
    assert strict.start.isostring.startswith(w["day"])
