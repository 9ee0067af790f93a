"""HTTP contract of /api/surveillance feeds, signals, warning products and detection: status
codes, coded errors, bodies; scope with real tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from healthgrid.security import service as security
from healthgrid.surveillance import signals
from healthgrid.surveillance.detection_methods import Alarm

from .signal_fixtures import DAY, NOW, SYS, make_world

API = "/api/surveillance"


@pytest.fixture
def world(session):
    return make_world(session)


def ili_rows(world, n=2, **changes):
    return [{"source": "H001", "division_code": world.county(), "date": (DAY - timedelta(days=i)).isoformat(),
             "metric": "ILI", "count": 10, "total": 200, **changes} for i in range(n)]


def a_signal(session, world, county=0) -> int:
    alarm = Alarm("case:3600", "3600", world.county(county), "mpm", DAY, 12.0, 7.0, {"percentile": 80})
    return signals.raise_signal(session, alarm, now=NOW).signal_id


def bearer(session, actor) -> dict:
    token = security.create_token(session, SYS, user_id=actor.user_id, name="api").token
    return {"Authorization": f"Bearer {token}"}


# -- feeds -----------------------------------------------------------------------------------------------

def test_a_json_batch_is_created_then_ignored_when_sent_again(client, world):
    first = client.post(f"{API}/feeds/fever", json={"rows": ili_rows(world)})
    assert first.status_code == 201, first.text
    assert first.json()["created"] == 2 and first.json()["status"] == "accepted"
    again = client.post(f"{API}/feeds/fever", json={"rows": ili_rows(world)})
    assert (again.json()["created"], again.json()["ignored"]) == (0, 2)
    batches = client.get(f"{API}/feeds/batches", params={"feed": "fever"}).json()
    assert [b["id"] for b in batches][:2] == [again.json()["batch_id"], first.json()["batch_id"]]


def test_a_refused_batch_answers_422_with_the_whole_report(client, world):
    rows = ili_rows(world, 3)
    rows[2]["total"] = 3
    r = client.post(f"{API}/feeds/fever", json={"rows": rows})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "SURV-520"
    assert body["detail"]["report"]["errors"] == [{"row": 3, "code": "SURV-510", "field": "total",
                                                   "message": body["detail"]["report"]["errors"][0]["message"]}]


@pytest.mark.parametrize(("path", "payload", "code"), [
    ("/feeds/fever", {"rows": []}, "HG-422"),
    ("/feeds/fever", {"rows": [{"source": "x"}]}, "HG-422"),
    ("/feeds/fever", {"rows": [{"source": "H", "division_code": "930102", "date": "2025-03-10", "metric": "ILI",
                                "count": 1, "total": 2, "colour": "red"}]}, "HG-422"),
    ("/feeds/wastewater", {"rows": [{"source": "H", "division_code": "930102", "date": "2025-03-10",
                                     "metric": "ILI", "count": 1}]}, "HG-422"),
])
def test_malformed_requests_are_refused_with_a_code(client, world, path, payload, code):
    r = client.post(f"{API}{path}", json=payload)
    assert r.status_code == 422 and r.json()["code"] == code


def test_a_csv_body_and_a_csv_upload_are_ingested(client, world):
    text = ("source,division_code,date,metric,count,total\n"
            f"P1,{world.county()},{DAY.isoformat()},antipyretic,30,\n"
            f"P1,{world.county()},{DAY.isoformat()},cough,12,\n")
    plain = client.post(f"{API}/feeds/pharmacy/csv", content=text.encode("gb18030"),
                        headers={"Content-Type": "text/csv"})
    assert plain.status_code == 201, plain.text
    assert plain.json()["created"] == 2 and plain.json()["filename"] is None
    upload = client.post(f"{API}/feeds/pharmacy/csv", files={"file": ("pharmacy.csv", text.encode(), "text/csv")})
    assert upload.status_code == 201 and upload.json()["ignored"] == 2 and upload.json()["filename"] == "pharmacy.csv"


@pytest.mark.parametrize(("content", "code"), [
    (b"", "SURV-522"),
    (b"src,division_code,date,metric,count\n", "SURV-522"),
    (b"source,division_code,date,metric,count\nP1,930102,2025-03-10,cough,-4\n", "SURV-520"),
])
def test_a_bad_csv_is_refused_with_a_code(client, world, content, code):
    r = client.post(f"{API}/feeds/pharmacy/csv", content=content, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and r.json()["code"] == code


def test_the_feed_vocabulary_lists_every_feed_and_metric(client):
    feeds = {f["feed"]: f for f in client.get(f"{API}/feeds").json()}
    assert set(feeds) == {"fever", "ed", "pharmacy", "school", "lab"}
    assert {"code": "ILI", "zh": "流感样病例", "en": "Influenza-like illness"} in feeds["fever"]["metrics"]
    assert feeds["lab"]["total"]["required"] is True and feeds["pharmacy"]["total"]["required"] is False


# -- signals ---------------------------------------------------------------------------------------------

def test_a_signal_is_listed_read_and_answered(client, session, world):
    sid = a_signal(session, world)
    listed = client.get(f"{API}/signals", params={"status": "generated", "disease": "3600"}).json()["items"]
    assert [s["id"] for s in listed] == [sid] and listed[0]["stream_zh"] == "流行性腮腺炎"
    one = client.get(f"{API}/signals/{sid}").json()
    assert one["actions"] == ["assign", "verify"] and one["curve"]["statistic_kind"] == "cases_7d"
    assert one["events"][0]["to_status"] == "generated" and one["card_ids"] == []
    r = client.post(f"{API}/signals/{sid}/verify", json={"expected_version": one["version"], "outcome": "suspected",
                                                         "note": "同一学校多个班级"})
    assert r.status_code == 200 and r.json()["status"] == "suspected"
    r = client.post(f"{API}/signals/{sid}/note", json={"note": "已通知学校"})
    assert r.json()["events"][-1]["note"] == "已通知学校"


@pytest.mark.parametrize(("action", "body", "status", "code"), [
    ("close", {}, 409, "SURV-401"),
    ("verify", {"outcome": "excluded", "note": "无", "expected_version": 9}, 412, "SURV-402"),
    ("verify", {"outcome": "excluded"}, 422, "SURV-404"),
    ("conclude", {"outcome": "suspected", "note": "x"}, 422, "SURV-400"),
    ("approve", {}, 422, "HG-422"),
    ("note", {"note": "x", "colour": 1}, 422, "HG-422"),
])
def test_refused_actions_answer_with_their_code(client, session, world, action, body, status, code):
    sid = a_signal(session, world)
    r = client.post(f"{API}/signals/{sid}/{action}", json=body)
    assert (r.status_code, r.json()["code"]) == (status, code)


def test_an_unknown_signal_is_404(client, world):
    r = client.get(f"{API}/signals/999999")
    assert (r.status_code, r.json()["code"]) == (404, "SURV-403")


def test_a_county_cdc_reads_only_its_county(secure_client, session, world):
    mine, theirs = a_signal(session, world, 0), a_signal(session, world, 1)
    headers = bearer(session, world.epi_a)
    listed = secure_client.get(f"{API}/signals", headers=headers).json()["items"]
    assert [s["id"] for s in listed] == [mine]
    assert secure_client.get(f"{API}/signals/{theirs}", headers=headers).status_code == 403
    assert secure_client.get(f"{API}/signals", headers=bearer(session, world.admin_a)).status_code == 403
    assert secure_client.get(f"{API}/signals").status_code == 401


# -- warning products and detection ------------------------------------------------------------------------

def test_a_product_is_drafted_edited_and_issued_after_verification(client, session, world):
    sid = a_signal(session, world)
    draft = client.post(f"{API}/signals/{sid}/warnings", json={"product": "notification"})
    assert draft.status_code == 201 and draft.json()["product_zh"] == "警示信息通报"
    wid = draft.json()["id"]
    edited = client.patch(f"{API}/warnings/{wid}", json={"title": "警示信息通报（第1期）", "body": "正文"})
    assert edited.json()["title"] == "警示信息通报（第1期）"
    refused = client.post(f"{API}/warnings/{wid}/issue")
    assert (refused.status_code, refused.json()["code"]) == (409, "SURV-463")
    client.post(f"{API}/signals/{sid}/verify", json={"outcome": "suspected", "note": "疑似"})
    issued = client.post(f"{API}/warnings/{wid}/issue")
    assert issued.status_code == 200 and issued.json()["status"] == "issued"
    assert [w["id"] for w in client.get(f"{API}/signals/{sid}/warnings").json()] == [wid]
    assert client.get(f"{API}/warnings/{wid}").json()["issued_by"] == "system:tests"
    assert client.post(f"{API}/signals/{sid}/warnings", json={"product": "tweet"}).status_code == 422


def test_detection_runs_a_past_day_once(client, world):
    day = (DAY - timedelta(days=30)).isoformat()
    first = client.post(f"{API}/detection/run", params={"day": day})
    assert first.status_code == 200 and first.json()["day"] == day and "skipped" not in first.json()
    assert client.post(f"{API}/detection/run", params={"day": day}).json()["skipped"] is True
    future = client.post(f"{API}/detection/run", params={"day": "2999-01-01"})
    assert (future.status_code, future.json()["code"]) == (422, "SURV-481")
