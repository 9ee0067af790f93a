"""HTTP contract of the recognition API under /api/results: the check and the answer, EQA
lists as JSON and CSV, local code maps, the measures; status codes and coded errors; a real
clinician's token. (Who may call what: the endpoint matrix in tests/security.)"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.factories import SYS

from healthgrid.db import utcnow
from healthgrid.results.domain import CN_TZ
from healthgrid.results.models import Decision
from healthgrid.security import service as security

from .world_recognition import GLU, add_report, make_world


@pytest.fixture
def w(session):
    world = make_world(session)
    session.commit()
    return world


def _check(client, w, item="GLU"):
    return client.post("/api/results/recognition/check", json={"patient_id": w.patient, "item": item,
                                                                "ordering_org_id": w.region.county_hospital.id})


def test_check_answer_and_read_back(client, session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=2, now=utcnow(), values=GLU)
    first = _check(client, w)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["pending"] and body["outcome"] == "pending" and body["item_zh"] == "葡萄糖"
    (offer,) = body["candidates"]
    assert offer["report_id"] == r.id and offer["org_name"] == "安平市第一人民医院" and offer["mark"] == "HR"
    assert offer["values"][0]["value"] == "5.4" and offer["validity_days"] == 30
    answer = client.post(f"/api/results/recognition/{body['id']}/decision", json={"accept_report_id": r.id})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "recognised" and answer.json()["recognised_report_id"] == r.id
    again = client.post(f"/api/results/recognition/{body['id']}/decision",
                        json={"override": {"reason": "emergency", "patient_informed": False}})
    assert again.status_code == 409 and again.json()["code"] == "RES-124"
    read = client.get(f"/api/results/recognition/{body['id']}")
    assert read.status_code == 200 and read.json()["outcome"] == "recognised"


def test_repeat_with_a_reason_and_the_codes_of_bad_answers(client, session, w):
    add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=2, now=utcnow(), values=GLU)
    did = _check(client, w).json()["id"]
    url = f"/api/results/recognition/{did}/decision"
    for body, status, code in (({}, 422, "RES-125"),
                               ({"override": {"reason": "other", "patient_informed": True}}, 422, "RES-013"),
                               ({"override": {"reason": "changed_condition"}}, 422, "RES-014"),
                               ({"accept_report_id": 999_999}, 422, "RES-126")):
        resp = client.post(url, json=body)
        assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text
    why = {"reason": "other", "text": "外院结果与临床不符", "patient_informed": True}
    ok = client.post(url, json={"override": why})
    assert ok.status_code == 200 and ok.json()["override_reason"] == "other"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"patient_id": 1, "item": "glu", "ordering_org_id": 1}, 422, "RES-120"),
    ({"patient_id": 2**31 - 1, "item": "GLU", "ordering_org_id": "{org}"}, 404, "PAT-010"),
    ({"patient_id": 1, "item": "GLU", "ordering_org_id": 2**31 - 1}, 404, "RES-121"),
])
def test_bad_checks_are_refused_with_a_code(client, w, body, status, code):
    body = {**body, "patient_id": w.patient if body["patient_id"] == 1 else body["patient_id"]}
    if body["ordering_org_id"] == "{org}":
        body["ordering_org_id"] = w.region.county_hospital.id
    resp = client.post("/api/results/recognition/check", json=body)
    assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text


@pytest.mark.parametrize("body", [
    {"patient_id": 1, "item": "X" * 41, "ordering_org_id": 1},
    {"patient_id": 0, "item": "GLU", "ordering_org_id": 1},
    {"patient_id": 1, "item": "GLU", "ordering_org_id": 1, "extra": True},
])
def test_malformed_bodies_are_refused_before_the_service(client, session, w, body):
    assert client.post("/api/results/recognition/check", json=body).status_code == 422
    assert session.scalar(select(func.count()).select_from(Decision)) == 0


def test_eqa_as_json_and_csv_and_the_list(client, w):
    ok = client.post("/api/results/eqa", json={"provider": "省临床检验中心", "records": [
        {"lab_code": w.city_hospital.code, "item": "TSH", "year": 2026, "result": "合格"}]})
    assert ok.status_code == 201 and ok.json()["created"] == 1, ok.text
    csv = f"lab_code,item,year,result\n{w.city_hospital.code},AFP,2026,不合格\n".encode("gb18030")
    as_csv = client.post("/api/results/eqa/csv?provider=QC", content=csv, headers={"content-type": "text/csv"})
    assert as_csv.status_code == 201 and as_csv.json()["created"] == 1, as_csv.text
    as_file = client.post("/api/results/eqa/csv", files={"file": ("eqa.csv", csv, "text/csv")})
    assert as_file.status_code == 201 and as_file.json()["ignored"] == 0 and as_file.json()["updated"] == 1
    bad = client.post("/api/results/eqa", json={"records": [{"lab_code": "NOPE", "item": "TSH", "year": 2026,
                                                             "passed": True}]})
    assert bad.status_code == 422 and bad.json()["code"] == "RES-100"
    assert bad.json()["detail"]["report"]["errors_by_code"] == {"RES-102": 1}
    header_only = client.post("/api/results/eqa/csv", content=b"lab_code,item,year,result\n",
                              headers={"content-type": "text/csv"})
    assert header_only.status_code == 422 and header_only.json()["code"] == "RES-101"
    listed = client.get("/api/results/eqa", params={"lab_org_id": w.city_hospital.id, "item": "AFP"})
    assert listed.status_code == 200 and [(e["item"], e["passed"]) for e in listed.json()] == [("AFP", False)]


def test_local_codes_put_and_get(client, w):
    org = w.city_hospital.id
    put = client.put("/api/results/local-codes", json={"org_id": org, "codes": [
        {"local_code": "LIS-0101", "item": "GLU"}, {"local_code": "LIS-0102", "item": "K"}]})
    assert put.status_code == 200 and put.json()["created"] == 2, put.text
    shrink = client.put("/api/results/local-codes", json={"org_id": org, "codes": [
        {"local_code": "LIS-0101", "item": "GLU"}]})
    assert shrink.json()["deleted"] == 1 and shrink.json()["ignored"] == 1
    got = client.get("/api/results/local-codes", params={"org_id": org})
    assert [(c["local_code"], c["item"]) for c in got.json()] == [("LIS-0101", "GLU")]
    bad = client.put("/api/results/local-codes", json={"org_id": org, "codes": [{"local_code": "1", "item": "?"}]})
    assert bad.status_code == 422 and bad.json()["code"] == "RES-113"


def test_measures(client, w):
    _check(client, w)  # no prior: ordered
    today = utcnow().astimezone(CN_TZ).date()
    resp = client.get("/api/results/measures", params={"since": today.replace(day=1).isoformat(),
                                                       "until": today.isoformat(),
                                                       "org_id": [w.region.county_hospital.id]})
    assert resp.status_code == 200, resp.text
    total = resp.json()["total"]
    assert (total["orders"], total["repeat_no_prior"], total["recognisable_share"]) == (1, 1, 0.0)
    bad = client.get("/api/results/measures", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert bad.status_code == 422 and bad.json()["code"] == "RES-136"


def test_a_clinicians_token_checks_and_a_commission_token_may_not(secure_client, session, w):
    def token(actor_user):
        return {"Authorization": f"Bearer {security.create_token(session, SYS, user_id=actor_user, name='t').token}"}

    doctor = security.user_by_name(session, w.doctor.username)
    bureau = security.create_user(session, SYS, username="api-bureau", display_name="卫健委", password="Bureau-pass-1",
                                  grants=[security.parse_grant("commission_admin", "division", w.region.province.id)])
    session.commit()
    body = {"patient_id": w.patient, "item": "K", "ordering_org_id": w.region.county_hospital.id}
    ok = secure_client.post("/api/results/recognition/check", json=body, headers=token(doctor.id))
    assert ok.status_code == 201 and ok.json()["physician"] == w.doctor.username, ok.text
    no = secure_client.post("/api/results/recognition/check", json=body, headers=token(bureau.id))
    assert no.status_code == 403 and no.json()["code"] == "SEC-102"

