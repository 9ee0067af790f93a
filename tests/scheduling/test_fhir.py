"""Scheduling over FHIR: Schedule, Slot and Appointment mapped against golden JSON (and
strict R4 through fhirclient's models), every search parameter, ``$find`` and ``$book``
(with the retry key and a full slot), cancellation and check-in by a status update with
If-Match, the refusals of changes an update cannot make and of searches the queries cannot
answer, and the CapabilityStatement that lists it all.

Golden and check-in tests run the transport-free registry with the scheduling clock fixed
at ``NOW``; REST round trips go through the app (actor: the platform) at the real time, on a
clinic whose sessions are opened from today."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fhirclient.models.appointment import Appointment as StrictAppointment
from fhirclient.models.schedule import Schedule as StrictSchedule
from fhirclient.models.slot import Slot as StrictSlot
from tests.factories import SYS
from tests.scheduling.conftest import NOW, TODAY, make_clinic, tomorrow_slots

from healthgrid.db import utcnow
from healthgrid.errors import Conflict
from healthgrid.fhir import FhirRegistry
from healthgrid.registry import service as registry
from healthgrid.scheduling import fhir as scheduling_fhir
from healthgrid.scheduling import schedules, service

FIXTURES = Path(__file__).parent / "fixtures"
FHIR_JSON = "application/fhir+json; charset=utf-8"
BASE = "http://testserver/fhir"


def golden(name: str, **ids: object) -> dict:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for key, value in ids.items():
        text = text.replace("{{" + key + "}}", str(value))
    return json.loads(text)


def pool_of(resource: dict) -> str:
    return next(e["valueCoding"]["code"] for e in resource["extension"] if e["url"] == scheduling_fhir.POOL_EXTENSION)


def places_of(resource: dict) -> dict:
    ext = next(e for e in resource["extension"] if e["url"] == scheduling_fhir.PLACES_EXTENSION)
    return {x["url"]: x["valueUnsignedInt"] for x in ext["extension"]}


def params(**values: object) -> dict:
    """A Parameters body: references as valueReference, the rest as valueString."""
    out = []
    for name, value in values.items():
        name = name.replace("_", "-")
        out.append({"name": name, "valueReference": {"reference": value}} if "/" in str(value)
                   else {"name": name, "valueString": str(value)})
    return {"resourceType": "Parameters", "parameter": out}


def code_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["details"]["coding"][0]["code"]


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


# --- the transport-free registry at a fixed time ------------------------------------------------

class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fixed(session, settings):
    clock = Clock(NOW)
    reg = FhirRegistry(settings.fhir)
    scheduling_fhir.register(reg, clock=clock)
    return SimpleNamespace(reg=reg, clock=clock, clinic=make_clinic(session))


def book_fixed(session, fx, slot_id: int, patient_id: int) -> dict:
    return fx.reg.operation(session, "Appointment", "book", method="POST", body=params(
        slot=f"Slot/{slot_id}", patient=f"Patient/{patient_id}"), query=(), base=BASE, actor=SYS).resource


def test_schedule_maps_to_golden_json(session, fixed):
    c = fixed.clinic
    body = fixed.reg.read(session, "Schedule", str(c.schedule.id), SYS).resource
    assert body == golden("fhir-schedule.json", id=c.schedule.id, doctor=c.region.doctor.id,
                          org=c.region.county_hospital.id)
    StrictSchedule(body)  # fhirclient raises on anything that is not R4


def test_slot_maps_to_golden_json(session, fixed):
    c = fixed.clinic
    web = tomorrow_slots(session, c)[0]
    body = fixed.reg.read(session, "Slot", str(web.id), SYS).resource
    assert body == golden("fhir-slot.json", id=web.id, schedule=c.schedule.id)
    StrictSlot(body)


def test_booked_appointment_maps_to_golden_json(session, fixed):
    c = fixed.clinic
    web = tomorrow_slots(session, c)[0]
    booked = book_fixed(session, fixed, web.id, c.patients[0].id)
    answer = fixed.reg.read(session, "Appointment", booked["id"], SYS)
    body = dict(answer.resource)
    assert datetime.fromisoformat(body.pop("created")) <= utcnow()
    assert body == golden("fhir-appointment.json", id=booked["id"], slot=web.id, patient=c.patients[0].id,
                          doctor=c.region.doctor.id, org=c.region.county_hospital.id)
    assert answer.headers["ETag"] == 'W/"1"'
    StrictAppointment(answer.resource)


def test_updates_check_the_patient_in_on_the_day_and_complete_the_visit(session, fixed):
    c = fixed.clinic
    web = tomorrow_slots(session, c)[0]
    booked = book_fixed(session, fixed, web.id, c.patients[0].id)
    update = dict(booked, status="arrived")
    with pytest.raises(Conflict) as refused:
        fixed.reg.update(session, "Appointment", booked["id"], update, BASE, SYS)
    assert refused.value.code == "SCHED-021"  # not on the day yet
    fixed.clock.now = web.starts_at - timedelta(minutes=10)
    answer = fixed.reg.update(session, "Appointment", booked["id"], update, BASE, SYS, if_match='W/"1"')
    assert (answer.status, answer.resource["status"], answer.headers["ETag"]) == (200, "arrived", 'W/"2"')
    assert service.get_appointment(session, SYS, int(booked["id"])).checked_in_at == fixed.clock.now
    seen = fixed.reg.update(session, "Appointment", booked["id"], answer.resource | {"status": "fulfilled"}, BASE, SYS,
                            if_match='W/"2"')
    assert (seen.resource["status"], seen.headers["ETag"]) == ("fulfilled", 'W/"3"')


def test_a_stopped_session_shows_busy_unavailable_slots_and_a_cancelled_appointment(session, fixed):
    c = fixed.clinic
    web = tomorrow_slots(session, c)[0]
    booked = book_fixed(session, fixed, web.id, c.patients[0].id)
    schedules.add_closure(session, SYS, org_id=c.region.county_hospital.id, day=web.day, kind="stop",
                          reason="专家外出会诊", schedule_id=c.schedule.id, now=NOW)
    assert fixed.reg.read(session, "Slot", str(web.id), SYS).resource["status"] == "busy-unavailable"
    appointment = fixed.reg.read(session, "Appointment", booked["id"], SYS).resource
    assert appointment["status"] == "cancelled"
    assert "专家外出会诊" in appointment["cancelationReason"]["text"]


def test_schedule_search_by_equipment_kind_finds_exam_rooms(session, fixed):
    c = fixed.clinic
    org = c.region.county_hospital.id
    ct = registry.add_equipment(session, SYS, org_id=org, kind="CT")
    exam = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
        org_id=org, name="CT室", kind="exam", equipment_id=ct.id, templates=[
            schedules.TemplateIn(weekday=1, part="am", start="08:00", end="09:00", slot_minutes=20, per_slot=2)]),
        today=TODAY)
    found = fixed.reg.search(session, "Schedule", [("service-type", "CT")], BASE, SYS)
    assert ids(found) == [str(exam.id)] and found["total"] == 1
    resource = found["entry"][0]["resource"]
    assert resource["serviceType"][0]["coding"][0]["code"] == "CT"
    assert resource["serviceCategory"][0]["coding"][0]["code"] == "exam"
    assert ids(fixed.reg.search(session, "Schedule", [("service-type", "CT"), ("service-category", "clinic")],
                                BASE, SYS)) == []
    both = fixed.reg.search(session, "Schedule", [("actor", f"Location/site-{org}")], BASE, SYS)
    assert set(ids(both)) == {str(exam.id), str(c.schedule.id)}


# --- REST round trips at the real time ---------------------------------------------------------

@pytest.fixture
def live(session):
    """The clinic (its public places all web) with sessions opened from today, and tomorrow's
    two web slots."""
    c = make_clinic(session, channel_shares={"web": 1.0})
    today = service.local_day(session, utcnow())
    schedules.open_sessions(session, SYS, today=today, schedule_ids=[c.schedule.id])
    tomorrow = today + timedelta(days=1)
    slots = service.find_slots(session, SYS, service.SlotQuery(schedule_id=c.schedule.id, day_from=tomorrow,
                                                               day_to=tomorrow, pool="web"))
    return SimpleNamespace(c=c, org=c.region.county_hospital.id, doctor=c.region.doctor.id, tomorrow=tomorrow,
                           web=[s for s in slots if s.pool == "web"], patients=c.patients)


def book(client, slot_id: int, patient_id: int, **extra):
    return client.post("/fhir/Appointment/$book", json=params(slot=f"Slot/{slot_id}",
                                                              patient=f"Patient/{patient_id}", **extra))


def get(client, path: str, **query) -> dict:
    response = client.get(path, params=query) if query else client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    return response.json()


def test_metadata_lists_schedule_slot_appointment_and_the_operations(client):
    resources = {r["type"]: r for r in get(client, "/fhir/metadata")["rest"][0]["resource"]}
    assert {i["code"] for i in resources["Schedule"]["interaction"]} == {"read", "search-type"}
    assert {i["code"] for i in resources["Slot"]["interaction"]} == {"read", "search-type"}
    appointment = resources["Appointment"]
    assert {i["code"] for i in appointment["interaction"]} == {"read", "search-type", "update"}
    assert [o["name"] for o in appointment["operation"]] == ["find", "book"]
    assert {p["name"] for p in appointment["searchParam"]} == {"_id", "patient", "practitioner", "actor",
                                                                "location", "status", "date", "slot"}
    assert {p["name"] for p in resources["Slot"]["searchParam"]} >= {"schedule", "status", "start", "service-type"}
    assert {p["name"] for p in resources["Schedule"]["searchParam"]} >= {"actor", "active", "service-type"}


def test_schedule_read_and_search(client, live):
    sid = str(live.c.schedule.id)
    schedule = get(client, f"/fhir/Schedule/{sid}")
    assert {a["reference"] for a in schedule["actor"]} == {f"Practitioner/{live.doctor}", f"Location/site-{live.org}"}
    assert ids(get(client, "/fhir/Schedule", actor=f"Practitioner/{live.doctor}")) == [sid]
    assert ids(get(client, "/fhir/Schedule", actor=f"Location/site-{live.org}", **{"service-type": "03"})) == [sid]
    assert ids(get(client, "/fhir/Schedule", actor=f"Location/site-{live.org}", **{"service-type": "04"})) == []
    assert ids(get(client, "/fhir/Schedule", actor=f"Practitioner/{live.doctor}", active="true",
                   **{"service-category": "clinic"})) == [sid]
    assert ids(get(client, "/fhir/Schedule", _id=sid)) == [sid]


def test_slot_search_by_schedule_day_and_status(client, live):
    sched = f"Schedule/{live.c.schedule.id}"
    day = live.tomorrow.isoformat()
    every = get(client, "/fhir/Slot", schedule=sched, start=day, _count="50")
    assert every["total"] == 4 and {pool_of(e["resource"]) for e in every["entry"]} >= {"web", "reserved"}
    assert all(e["resource"]["start"].startswith(day) for e in every["entry"])
    web = live.web[0]
    assert book(client, web.id, live.patients[0].id).status_code == 201
    busy = get(client, "/fhir/Slot", schedule=sched, start=day, status="busy")
    assert ids(busy) == [str(web.id)] and places_of(busy["entry"][0]["resource"]) == {"capacity": 1, "booked": 1}
    free = ids(get(client, "/fhir/Slot", schedule=sched, start=day, status="free", _count="50"))
    assert len(free) == 3 and str(web.id) not in free
    two_days = client.get(f"/fhir/Slot?schedule={sched}&start=ge{day}"
                          f"&start=lt{(live.tomorrow + timedelta(days=2)).isoformat()}&_count=50").json()
    assert two_days["total"] == 8


def test_find_returns_free_slots_by_organization_department_doctor_and_channel(client, live):
    day = live.tomorrow.isoformat()
    query = {"organization": f"Organization/{live.org}", "service-type": "03", "start": day, "end": day,
             "channel": "web"}
    found = get(client, "/fhir/Appointment/$find", **query)
    assert found["type"] == "searchset" and ids(found) == [str(s.id) for s in live.web]
    assert all(e["resource"]["status"] == "free" and pool_of(e["resource"]) == "web" for e in found["entry"])
    by_post = client.post("/fhir/Appointment/$find", json={"resourceType": "Parameters", "parameter": [
        {"name": "practitioner", "valueReference": {"reference": f"Practitioner/{live.doctor}"}},
        {"name": "start", "valueDate": day}, {"name": "end", "valueDate": day},
        {"name": "channel", "valueCode": "web"}]})
    assert by_post.status_code == 200 and ids(by_post.json()) == ids(found)
    book(client, live.web[0].id, live.patients[0].id)
    assert str(live.web[0].id) not in ids(get(client, "/fhir/Appointment/$find", **query))
    assert ids(get(client, "/fhir/Appointment/$find", **(query | {"service-type": "CT"}))) == []
    one = get(client, "/fhir/Appointment/$find", organization=f"Organization/{live.org}", count="1")
    assert len(one["entry"]) == 1 and "total" not in one  # more lie beyond


def test_book_answers_the_appointment_and_a_retry_with_the_same_key_answers_it_again(client, live):
    web, patient = live.web[0], live.patients[0]
    first = book(client, web.id, patient.id, idempotency_key="req-7f3a")
    assert first.status_code == 201, first.text
    assert first.headers["Location"].endswith(f"/Appointment/{first.json()['id']}/_history/1")
    body = first.json()
    assert (body["resourceType"], body["status"], body["meta"]["versionId"]) == ("Appointment", "booked", "1")
    assert body["slot"] == [{"reference": f"Slot/{web.id}"}]
    assert body["participant"][0]["actor"]["reference"] == f"Patient/{patient.id}"
    again = book(client, web.id, patient.id, idempotency_key="req-7f3a")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    # the same key as a header (how the REST API takes it) answers the same booking
    by_header = client.post("/fhir/Appointment/$book", headers={"Idempotency-Key": "req-7f3a"},
                            json=params(slot=f"Slot/{web.id}", patient=f"Patient/{patient.id}"))
    assert by_header.status_code == 200 and by_header.json()["id"] == body["id"]
    other = live.web[1]
    assert code_of(book(client, other.id, patient.id, idempotency_key="req-7f3a"), 409) == "SCHED-013"
    read = client.get(f"/fhir/Appointment/{body['id']}")
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"' and read.json()["status"] == "booked"


def test_booking_a_full_slot_is_a_409_operation_outcome(client, live):
    web = live.web[0]
    assert book(client, web.id, live.patients[0].id).status_code == 201
    response = book(client, web.id, live.patients[1].id)
    assert code_of(response, 409) == "SCHED-002"
    assert response.json()["issue"][0]["code"] == "conflict"


def test_book_takes_a_bare_appointment(client, live):
    web, patient = live.web[0], live.patients[1]
    response = client.post("/fhir/Appointment/$book", json={
        "resourceType": "Appointment", "status": "proposed", "slot": [{"reference": f"Slot/{web.id}"}],
        "identifier": [{"system": scheduling_fhir.BOOKING_REQUEST_SYSTEM, "value": "bare-1"}],
        "extension": [{"url": scheduling_fhir.CHANNEL_EXTENSION,
                       "valueCoding": {"system": "https://healthgrid.example/fhir/CodeSystem/booking-channel",
                                       "code": "web"}}],
        "participant": [{"actor": {"reference": f"Patient/{patient.id}"}, "status": "needs-action"}]})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "booked"
    replay = client.post("/fhir/Appointment/$book", json={
        "resourceType": "Appointment", "status": "proposed", "slot": [{"reference": f"Slot/{web.id}"}],
        "identifier": [{"system": scheduling_fhir.BOOKING_REQUEST_SYSTEM, "value": "bare-1"}],
        "participant": [{"actor": {"reference": f"Patient/{patient.id}"}, "status": "needs-action"}]})
    assert replay.json()["id"] == response.json()["id"]


def test_book_refuses_bad_input_with_coded_outcomes(client, live):
    web = live.web[0]
    post = lambda body: client.post("/fhir/Appointment/$book", json=body)  # noqa: E731
    assert code_of(post(params(slot=f"Slot/{web.id}")), 400) == "FHIR-014"  # no patient
    assert code_of(post(params(slot=f"Slot/{web.id}", patient="Patient/1", when="soon")), 400) == "FHIR-014"
    assert code_of(book(client, web.id, live.patients[0].id, channel="fax"), 400) == "FHIR-014"
    assert code_of(post(params(slot=f"Schedule/{web.id}", patient="Patient/1")), 422) == "SCHED-070"
    assert code_of(book(client, web.id, 2**31 - 2), 404) == "SCHED-014"  # not in the patient index
    assert code_of(book(client, 2**31 - 2, live.patients[0].id), 404) == "SCHED-001"
    assert code_of(post({"resourceType": "Appointment", "status": "proposed", "participant": [
        {"actor": {"reference": "Patient/1"}, "status": "accepted"}]}), 422) == "SCHED-070"  # no slot
    assert code_of(post({"resourceType": "Appointment", "status": "nonsense"}), 400) == "FHIR-011"


def test_appointment_search_by_every_parameter(client, live):
    first = book(client, live.web[0].id, live.patients[0].id).json()
    second = book(client, live.web[1].id, live.patients[1].id).json()
    day = live.tomorrow.isoformat()
    both = sorted([first["id"], second["id"]], key=int)
    assert ids(get(client, "/fhir/Appointment", patient=f"Patient/{live.patients[0].id}")) == [first["id"]]
    assert ids(get(client, "/fhir/Appointment", actor=f"Patient/{live.patients[1].id}")) == [second["id"]]
    assert sorted(ids(get(client, "/fhir/Appointment", practitioner=f"Practitioner/{live.doctor}", date=day)),
                  key=int) == both
    assert sorted(ids(get(client, "/fhir/Appointment", actor=f"Location/site-{live.org}", status="booked")),
                  key=int) == both
    assert ids(get(client, "/fhir/Appointment", location=f"Location/site-{live.org}",
                   slot=f"Slot/{live.web[1].id}")) == [second["id"]]
    assert ids(get(client, "/fhir/Appointment", patient=f"Patient/{live.patients[0].id}", status="cancelled")) == []
    assert ids(get(client, "/fhir/Appointment", patient=f"Patient/{live.patients[0].id}",
                   actor=f"Patient/{live.patients[1].id}")) == []
    before = (live.tomorrow - timedelta(days=1)).isoformat()
    assert ids(get(client, "/fhir/Appointment", practitioner=f"Practitioner/{live.doctor}", date=f"le{before}")) == []
    assert ids(get(client, "/fhir/Appointment", _id=first["id"])) == [first["id"]]
    paged = get(client, "/fhir/Appointment", practitioner=f"Practitioner/{live.doctor}", _count="1")
    assert len(paged["entry"]) == 1 and any(link["relation"] == "next" for link in paged["link"])


def test_cancel_by_update_with_if_match_frees_the_slot(client, live):
    web = live.web[0]
    booked = book(client, web.id, live.patients[0].id).json()
    change = booked | {"status": "cancelled", "cancelationReason": {"text": "临时出差"}}
    response = client.put(f"/fhir/Appointment/{booked['id']}", json=change, headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["cancelationReason"]["text"], response.headers["ETag"]) == ("cancelled", "临时出差",
                                                                                            'W/"2"')
    assert get(client, f"/fhir/Slot/{web.id}")["status"] == "free"
    again = client.put(f"/fhir/Appointment/{booked['id']}", json=body | {"status": "cancelled"})
    assert again.status_code == 200 and again.json()["meta"]["versionId"] == "2"  # nothing to change


def test_update_refuses_what_it_cannot_change(client, live):
    booked = book(client, live.web[0].id, live.patients[0].id).json()
    url = f"/fhir/Appointment/{booked['id']}"
    cancel = booked | {"status": "cancelled", "cancelationReason": {"text": "不去了"}}
    assert code_of(client.put(url, json=cancel, headers={"If-Match": 'W/"7"'}), 412) == "SCHED-028"
    assert code_of(client.put(url, json=booked | {"status": "cancelled"}), 422) == "SCHED-011"  # no reason
    assert code_of(client.put(url, json=booked | {"status": "noshow"}), 422) == "SCHED-071"
    assert code_of(client.put(url, json=booked | {"status": "fulfilled"}), 409) == "SCHED-012"  # not seen yet
    moved = booked | {"start": live.web[1].starts_at.isoformat(), "end": live.web[1].ends_at.isoformat()}
    assert code_of(client.put(url, json=moved), 422) == "SCHED-071"
    other = booked | {"slot": [{"reference": f"Slot/{live.web[1].id}"}]}
    assert code_of(client.put(url, json=other), 422) == "SCHED-071"
    someone = cancel | {"participant": [{"actor": {"reference": f"Patient/{live.patients[1].id}"},
                                         "status": "accepted"}]}
    assert code_of(client.put(url, json=someone), 422) == "SCHED-071"
    assert code_of(client.put(url, json=booked | {"status": "arrived"}), 409) == "SCHED-021"  # not today
    assert code_of(client.put(url, json=booked | {"status": "arrived"}, headers={"If-Match": 'W/"3"'}),
                   412) == "SCHED-028"
    assert code_of(client.put("/fhir/Appointment/999999", json=booked | {"id": "999999"}), 404) == "SCHED-025"
    assert get(client, url)["status"] == "booked"  # nothing was written


def test_schedule_search_by_active_and_exam_kind(client, session, live):
    sid = str(live.c.schedule.id)
    assert ids(get(client, "/fhir/Schedule", active="false")) == []
    assert sid in ids(get(client, "/fhir/Schedule"))
    schedules.close_schedule(session, SYS, live.c.schedule.id)
    assert ids(get(client, "/fhir/Schedule", active="false")) == [sid]
    assert sid not in ids(get(client, "/fhir/Schedule", active="true"))


def test_searches_the_queries_cannot_answer_are_refused(client, live):
    assert code_of(client.get("/fhir/Slot?service-type=03"), 400) == "SCHED-072"
    assert code_of(client.get("/fhir/Schedule?service-type=03"), 400) == "SCHED-072"
    assert code_of(client.get("/fhir/Slot?start=2026-11-24T08:00:00Z"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/Slot?start=ne2026-11-24"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/Appointment?status=waiting"), 400) == "FHIR-003"
    assert code_of(client.get("/fhir/Appointment?subject=Patient/1"), 400) == "FHIR-002"
    assert code_of(client.get("/fhir/Appointment/$find?start=2026-12-10&end=2026-12-01"), 400) == "FHIR-014"
    assert code_of(client.get("/fhir/Appointment/$find?organization=Organization/1&service-type=03&"
                              "channel=fax"), 400) == "FHIR-014"
    assert code_of(client.get("/fhir/Appointment/$book"), 405) == "FHIR-005"
    assert code_of(client.delete(f"/fhir/Appointment/{live.web[0].id}"), 405) == "FHIR-005"
    assert ids(get(client, "/fhir/Slot", status="busy-unavailable")) == []
    assert ids(get(client, "/fhir/Schedule", actor="Location/div-910102")) == []
    assert client.get("/fhir/Slot/abc").status_code == 404


def test_dates_are_hospital_days(session, fixed):
    c = fixed.clinic
    day = (TODAY + timedelta(days=1)).isoformat()
    found = fixed.reg.search(session, "Slot", [("schedule", str(c.schedule.id)), ("start", day)], BASE, SYS)
    starts = [datetime.fromisoformat(e["resource"]["start"]) for e in found["entry"]]
    # 08:00 in Shanghai is midnight UTC: the day is the hospital's, not UTC's.
    assert starts[0].astimezone(UTC).hour == 0 and starts[0].isoformat().startswith(day)
    month = fixed.reg.search(session, "Slot", [("schedule", str(c.schedule.id)), ("start", day[:7]),
                                               ("_count", "100")], BASE, SYS)
    in_month = [e["resource"]["start"] for e in month["entry"]]
    assert set(ids(found)) < set(ids(month)) and all(s.startswith(day[:7]) for s in in_month)
