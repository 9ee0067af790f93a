"""The report-card API contract: the first report (201, then 200 on a retry with the same
Idempotency-Key), the coded refusals (422 with every problem, 409, 412, 404), schema bounds
(extra fields, control characters, out-of-range values are 422, never 5xx), the lists and
their filters, the prefill, correction / deletion / review, and authentication and scope
with real tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.factories import SYS

from healthgrid.security import service as security
from healthgrid.surveillance import reporting
from healthgrid.surveillance.card_queries import CST

from .test_reporting import adult, make_world

API = "/api/surveillance/cards"


def body(w, **changes) -> dict:
    at = datetime.now(CST).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    data = {"report_org_id": w.region.county_hospital.id, "patient_name": "王建国", "id_number": w.rid, "sex": "1",
            "birth_date": "1985-03-12", "work_unit": "永宁县机械厂", "phone": "13800138000", "belongs_to": 1,
            "current_address": "清河镇桃源村1号", "current_address_code": w.region.village.code,
            "population_group": "worker", "case_class": "clinical",
            "onset_date": (at.date() - timedelta(days=2)).isoformat(), "diagnosed_at": at.isoformat(),
            "disease": "0400", "subtype": "0401", "doctor": "张晓明"}
    data.update(changes)
    return data


@pytest.fixture
def w(session):
    world = make_world(session, tag="a")
    session.commit()
    return world


def test_a_first_report_answers_201_and_a_retry_200_with_the_same_card(client, w):
    made = client.post(API, json=body(w, patient_id=w.patient.id, icd10="A03.900", source="referral:3"),
                       headers={"Idempotency-Key": "api-1"})
    assert made.status_code == 201, made.text
    card = made.json()
    assert card["card_number"] == f"CRB{card['id']:010d}" and card["status"] == "reported"
    assert card["card"]["patient_name"] == "王建国" and card["card"]["report_area_code"] == w.region.county.code
    assert card["icd10"] == "A03.900" and card["late_minutes"] == 0 and card["review_overdue"] is False
    assert [e["kind"] for e in card["events"]] == ["reported"] and card["version"] == 1
    again = client.post(API, json=body(w, patient_id=w.patient.id, icd10="A03.900", source="referral:3"),
                        headers={"Idempotency-Key": "api-1"})
    assert again.status_code == 200 and again.json()["id"] == card["id"]
    other = client.post(API, json=body(w, case_class="confirmed"), headers={"Idempotency-Key": "api-1"})
    assert other.status_code == 409 and other.json()["code"] == "SURV-301"
    dup = client.post(API, json=body(w))
    assert dup.status_code == 409 and dup.json()["detail"]["card_number"] == card["card_number"]
    assert client.post(API, json=body(w, new_episode=True)).status_code == 201
    # A time with an offset is the same hour in China.
    at = datetime.fromisoformat(body(w)["diagnosed_at"]).replace(tzinfo=CST).astimezone(UTC)
    utc = client.post(API, json=body(w, disease="3900", subtype=None, diagnosed_at=at.isoformat()))
    assert utc.status_code == 201 and utc.json()["card"]["diagnosed_at"] == body(w)["diagnosed_at"]


def test_every_problem_of_a_card_comes_back_at_once(client, w):
    answer = client.post(API, json=body(w, patient_name="1王", phone="abc", case_class=None, onset_date=None))
    assert answer.status_code == 422
    problems = {(p["code"], p["field"]) for p in answer.json()["detail"]["problems"]}
    assert problems == {("SURV-207", "patient_name"), ("SURV-218", "phone"), ("SURV-227", "case_class"),
                        ("SURV-231", "onset_date")}
    assert client.get(API).json()["items"] == []


@pytest.mark.parametrize("changes", [
    {"unknown_field": 1}, {"patient_name": "王\x00建国"}, {"age": -1}, {"belongs_to": 7}, {"sex": "3"},
    {"birth_date": "0001-01-01"}, {"diagnosed_at": "9999-12-31T23:00:00"}, {"disease": "0400;--"},
    {"report_org_id": 0}, {"report_org_id": 2**31}, {"supplementary": {"severe": "maybe"}},
    {"supplementary": {"other": "x"}}, {"current_address_code": "44abc"}, {"population_group": "pilot"},
])
def test_out_of_bounds_input_is_422_never_a_server_error(client, w, changes):
    assert client.post(API, json=body(w, **changes)).status_code == 422


def test_the_lists_filters_and_bounds(client, session, w):
    made = client.post(API, json=body(w)).json()
    assert [c["id"] for c in client.get(API, params={"status": "reported", "disease": "0401"}).json()["items"]] == [
        made["id"]]
    assert client.get(API, params={"overdue": "review"}).json()["items"] == []
    assert client.get(API, params={"county_code": "440103"}).json()["items"] == []
    today = datetime.now(CST).date().isoformat()
    found = client.get(API, params={"since": today, "until": today, "date_kind": "diagnosed", "limit": 1}).json()
    assert [c["id"] for c in found["items"]] == [made["id"]] and found["more"] is False
    for bad in ({"overdue": "late"}, {"county_code": "44"}, {"status": "lost"}, {"limit": 501}, {"offset": -1},
                {"since": "2025-13-01"}, {"date_kind": "fill"}):
        assert client.get(API, params=bad).status_code == 422, bad
    assert client.get(API, params={"since": "2025-03-09", "until": "2025-03-01"}).json()["code"] == "SURV-310"
    assert client.get(f"{API}/{made['id']}").json()["card_number"] == made["card_number"]
    assert client.get(f"{API}/999999").status_code == 404 and client.get(f"{API}/0").status_code == 422


def test_the_prefill(client, w):
    answer = client.get(f"{API}/prefill", params={"patient_id": w.patient.id, "icd10": "B18.1",
                                                  "org_id": w.region.county_hospital.id})
    assert answer.status_code == 200, answer.text
    card = answer.json()
    assert (card["patient_name"], card["disease"], card["subtype"], card["id_number"]) == ("王建国", "0300", "0302",
                                                                                            w.rid)
    refused = client.get(f"{API}/prefill", params={"patient_id": w.patient.id, "icd10": "I10",
                                                   "org_id": w.region.county_hospital.id})
    assert refused.status_code == 422 and refused.json()["code"] == "SURV-308"


def test_correction_deletion_and_review(client, w):
    card = client.post(API, json=body(w)).json()
    url = f"{API}/{card['id']}"
    stale = client.post(f"{url}/correction", json={"changes": {"phone": "13900139000"}, "reason": "电话有误",
                                                    "expected_version": 9})
    assert stale.status_code == 412 and stale.json()["code"] == "SURV-303"
    changes = {"phone": "13900139000", "disease": "3900", "subtype": None}
    fixed = client.post(f"{url}/correction", json={"changes": changes, "reason": "订正", "expected_version": 1})
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["card"]["phone"], fixed.json()["card"]["corrected_disease"]) == ("13900139000", "0400")
    assert client.post(f"{url}/correction", json={"changes": {"phone": "13900139000"}, "reason": "同"}
                       ).json()["code"] == "SURV-311"
    assert client.post(f"{url}/correction", json={"changes": {"card_number": "X"}, "reason": "改"}
                       ).status_code == 422
    returned = client.post(f"{url}/review", json={"decision": "return", "note": "请补充门牌号"})
    assert returned.status_code == 200 and returned.json()["status"] == "returned"
    assert client.post(f"{url}/review", json={"decision": "approve"}).json()["code"] == "SURV-304"
    assert client.post(f"{url}/review", json={"decision": "maybe"}).status_code == 422
    deleted = client.post(f"{url}/deletion", json={"delete_type": "misreport", "reason": "排除"})
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert client.post(f"{url}/deletion", json={"delete_type": "lost", "reason": "x"}).status_code == 422


def test_authentication_and_scope_with_real_tokens(secure_client, session, w):
    card = reporting.report_card(session, w.doctor, adult(w), report_org_id=w.region.county_hospital.id,
                                 now=datetime(2025, 3, 8, 6, tzinfo=UTC))
    tokens = {who: security.create_token(session, SYS, user_id=actor.user_id, name="api tests").token
              for who, actor in (("doctor", w.doctor), ("doctor2", w.doctor2), ("cdc", w.cdc), ("cdc2", w.cdc2))}
    session.commit()

    def call(method: str, path: str, who: str | None, **kw):
        headers = {"authorization": f"Bearer {tokens[who]}"} if who else {}
        return secure_client.request(method, path, headers=headers, **kw)

    assert call("GET", API, None).status_code == 401
    assert [c["id"] for c in call("GET", API, "doctor").json()["items"]] == [card.id]
    assert call("GET", API, "doctor2").json()["items"] == [] and call("GET", API, "cdc2").json()["items"] == []
    assert call("GET", f"{API}/{card.id}", "doctor2").json()["code"] == "SEC-103"
    assert call("POST", f"{API}/{card.id}/review", "doctor", json={"decision": "approve"}).json()["code"] == "SEC-102"
    assert call("POST", f"{API}/{card.id}/review", "cdc2", json={"decision": "approve"}).status_code == 403
    assert call("POST", API, "doctor2", json=body(w)).json()["code"] == "SEC-103"  # not its facility
    approved = call("POST", f"{API}/{card.id}/review", "cdc", json={"decision": "approve", "expected_version": 1})
    assert approved.status_code == 200 and approved.json()["status"] == "reviewed"
