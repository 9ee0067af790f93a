"""HTTP contract of /api/scheduling: status codes, the Idempotency-Key, coded errors.
(Who may call what: tests/security/test_endpoint_matrix.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.scheduling.conftest import local_today, make_clinic


@pytest.fixture
def world(session):
    clinic = make_clinic(session, per_slot=1, reserve_ratio=0.0, channel_shares={"web": 1.0}, today=local_today())
    session.commit()
    return clinic


def _free(client, world, day=None):
    day = day or (local_today() + timedelta(days=1))
    r = client.get("/api/scheduling/slots", params={"schedule_id": world.schedule.id, "day_from": day.isoformat(),
                                                    "day_to": day.isoformat(), "pool": "web"})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_book_replay_and_full_slot(client, world):
    slot = _free(client, world)[0]
    body = {"slot_id": slot["id"], "patient_id": world.patients[0].id, "channel": "web"}
    first = client.post("/api/scheduling/appointments", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    again = client.post("/api/scheduling/appointments", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = {"slot_id": slot["id"], "patient_id": world.patients[1].id, "channel": "web"}
    full = client.post("/api/scheduling/appointments", json=other)
    assert full.status_code == 409 and full.json()["code"] == "SCHED-002"
    reused = client.post("/api/scheduling/appointments", json=other, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 409 and reused.json()["code"] == "SCHED-013"
    assert slot["id"] not in {s["id"] for s in _free(client, world)}


@pytest.mark.parametrize(("body", "field"), [
    ({"slot_id": 0, "patient_id": 1}, "slot_id"), ({"slot_id": 1, "patient_id": 1, "channel": "fax"}, "channel"),
    ({"slot_id": 1, "patient_id": 1, "extra": 1}, "extra")])
def test_malformed_bookings_are_refused_with_the_field_named(client, body, field):
    r = client.post("/api/scheduling/appointments", json=body)
    assert r.status_code == 422 and field in r.text


def test_unknown_slot_and_patient(client, world):
    r = client.post("/api/scheduling/appointments", json={"slot_id": 999_999, "patient_id": world.patients[0].id})
    assert r.status_code == 404 and r.json()["code"] == "SCHED-001"
    slot = _free(client, world)[0]
    r = client.post("/api/scheduling/appointments", json={"slot_id": slot["id"], "patient_id": 999_999})
    assert r.status_code == 404 and r.json()["code"] == "SCHED-014"


def test_cancel_check_in_and_read_back(client, world):
    slot = _free(client, world)[0]
    made = client.post("/api/scheduling/appointments", json={"slot_id": slot["id"],
                                                             "patient_id": world.patients[0].id}).json()
    r = client.post(f"/api/scheduling/appointments/{made['id']}/check-in")
    assert r.status_code == 409 and r.json()["code"] == "SCHED-021"  # not the day yet
    r = client.post(f"/api/scheduling/appointments/{made['id']}/cancel", json={"reason": "改期",
                                                                            "expected_version": 99})
    assert r.status_code == 412
    r = client.post(f"/api/scheduling/appointments/{made['id']}/cancel", json={"reason": "改期"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.get(f"/api/scheduling/appointments/{made['id']}").json()["cancel_reason"] == "改期"
    listed = client.get("/api/scheduling/appointments", params={"patient_id": world.patients[0].id}).json()
    assert [a["id"] for a in listed["items"]] == [made["id"]]


def test_schedules_templates_sessions_and_stop_clinic(client, world):
    r = client.post("/api/scheduling/schedules", json={
        "org_id": world.region.county_hospital.id, "name": "内科普通门诊", "department_id": world.department_id,
        "templates": [{"weekday": d, "part": "pm", "start": "14:00", "end": "16:00", "slot_minutes": 20,
                       "per_slot": 2} for d in range(7)]})
    assert r.status_code == 201, r.text
    sched = r.json()
    assert sched["templates"][0]["start"] == "14:00" and sched["reserve_ratio"] == 0.3
    day = (local_today() + timedelta(days=2)).isoformat()
    sessions = client.get(f"/api/scheduling/schedules/{sched['id']}/sessions",
                          params={"day_from": day, "day_to": day}).json()
    assert len(sessions) == 1 and sessions[0]["capacity"] == 12
    assert sessions[0]["free_by_pool"]["reserved"] == 4
    bad = client.post("/api/scheduling/schedules", json={**{k: sched[k] for k in ("org_id", "name")},
                                                         "templates": [{"weekday": 9, "part": "am",
                                                                        "start": "8:00", "end": "9:00"}]})
    assert bad.status_code == 422
    stop = client.post("/api/scheduling/closures", json={"org_id": world.region.county_hospital.id, "day": day,
                                                         "kind": "stop", "reason": "医生参加义诊",
                                                         "schedule_id": sched["id"], "part": "pm"})
    assert stop.status_code == 201 and stop.json()["stopped_sessions"] == 1
    after = client.get(f"/api/scheduling/schedules/{sched['id']}/sessions", params={"day_from": day, "day_to": day})
    assert after.json()[0]["status"] == "stopped"


def test_exam_plan_without_equipment_is_a_coded_conflict(client, world):
    r = client.post("/api/scheduling/exam-plans", json={"org_id": world.region.county_hospital.id,
                                                        "exams": ["CT-PLAIN"]})
    assert r.status_code == 409 and r.json()["code"] == "SCHED-022"
    r = client.post("/api/scheduling/exam-plans", json={"org_id": world.region.county_hospital.id,
                                                        "exams": ["NOPE"]})
    assert r.status_code == 422 and r.json()["code"] == "SCHED-023"
