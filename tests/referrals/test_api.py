"""HTTP contract of /api/referrals: status codes, the Idempotency-Key, the versions, coded
errors. (Who may call what: tests/security/test_endpoint_matrix.py.)"""

from __future__ import annotations

import pytest
from tests.scheduling.conftest import local_today

from .conftest import make_ward


@pytest.fixture
def ward(session):
    w = make_ward(session, today=local_today())
    session.commit()
    return w


def _form(ward, **kw) -> dict:
    body = {"patient_id": ward.patient.id, "from_org_id": ward.region.village_clinic.id,
            "to_org_id": ward.region.county_hospital.id, "to_department_id": ward.department_id,
            "diagnoses": [{"code": "I10", "name": "原发性高血压"}], "reason_text": "血压控制不佳",
            "clinical": {"sbp": 186, "dbp": 104}}
    body.update(kw)
    return body


def test_send_replay_accept_and_walk_back(client, ward):
    first = client.post("/api/referrals", json=_form(ward), headers={"Idempotency-Key": "r-1"})
    assert first.status_code == 201, first.text
    sent = first.json()
    assert (sent["status"], sent["direction"], sent["code"]) == ("submitted", "up", f"ZZ{sent['id']:08d}")
    assert [f["rule"] for f in sent["findings"]] == ["REF-C03"] and "_digest" not in sent["clinical"]
    again = client.post("/api/referrals", json=_form(ward), headers={"Idempotency-Key": "r-1"})
    assert again.status_code == 200 and again.json()["id"] == sent["id"]
    rid = sent["id"]
    r = client.post(f"/api/referrals/{rid}/accept", json={"expected_version": sent["version"]})
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "scheduled" and accepted["appointment_id"]
    stale = client.post(f"/api/referrals/{rid}/cancel", json={"reason": "x", "expected_version": sent["version"]})
    assert stale.status_code == 412 and stale.json()["code"] == "REF-004"
    for step in ("arrive", "start-care", "complete"):
        r = client.post(f"/api/referrals/{rid}/{step}", json={})
        assert r.status_code == 200, (step, r.text)
    back = client.post(f"/api/referrals/{rid}/back-referral", json={
        "diagnosis": "高血压2级", "plan": "氨氯地平5mg qd", "clinical": {"condition_stable": True,
                                                                    "diagnosis_confirmed": True}})
    assert back.status_code == 200 and back.json()["status"] == "back_referred", back.text
    tasks = client.get("/api/referrals/follow-ups", params={"org_id": ward.region.village_clinic.id})
    assert [t["referral"]["id"] for t in tasks.json()] == [rid]
    done = client.post(f"/api/referrals/{rid}/follow-up", json={"outcome": "血压平稳"})
    assert done.json()["status"] == "followed_up"
    closed = client.post(f"/api/referrals/{rid}/close", json={"note": "结案"})
    assert closed.json()["status"] == "closed" and len(closed.json()["events"]) == 11
    listed = client.get("/api/referrals", params={"org_id": ward.region.county_hospital.id, "box": "in",
                                                  "status": ["closed"]})
    assert [x["id"] for x in listed.json()["items"]] == [rid]


def test_criteria_hints_without_sending(client, ward):
    r = client.post("/api/referrals/criteria", json=_form(ward, clinical={"fpg": 18.2}))
    assert r.status_code == 200 and [f["rule"] for f in r.json()] == ["REF-C04"]
    assert client.get("/api/referrals", params={"org_id": ward.region.village_clinic.id}).json()["items"] == []


def test_reserved_places_of_the_receiving_department(client, ward):
    r = client.get("/api/referrals/reserved-places", params={"org_id": ward.region.county_hospital.id,
                                                              "department_id": ward.department_id})
    assert r.status_code == 200 and r.json() and {s["pool"] for s in r.json()} == {"reserved"}


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"diagnoses": []}, 422, None),
    ({"urgency": "soon"}, 422, None),
    ({"clinical": {"sbp": 20}}, 422, None),
    ({"extra": 1}, 422, None),
    ({"diagnoses": [{"code": "XYZ", "name": "?"}]}, 422, "REF-005"),
    ({"direction": "down"}, 422, "REF-006"),
])
def test_bad_requests_name_the_problem(client, ward, change, status, code):
    r = client.post("/api/referrals", json=_form(ward, **change))
    assert r.status_code == status, r.text
    if code:
        assert r.json()["code"] == code


def test_transitions_refused_with_codes(client, ward):
    rid = client.post("/api/referrals", json=_form(ward)).json()["id"]
    r = client.post(f"/api/referrals/{rid}/complete", json={})
    assert r.status_code == 409 and r.json()["code"] == "REF-002"
    r = client.post(f"/api/referrals/{rid}/reject", json={"reason": ""})
    assert r.status_code == 422
    assert client.get("/api/referrals/999999").json()["code"] == "REF-001"
    r = client.post(f"/api/referrals/{rid}/reject", json={"reason": "本院无床位"})
    assert r.json()["status"] == "rejected" and r.json()["form"]["reject_reason"] == "本院无床位"
