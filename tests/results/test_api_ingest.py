"""The ingestion API with real tokens: POST /api/results/hl7 answers the ACK (or NAK) and the
report, GET /api/results/messages is each organisation's own log without message content,
bounded inputs and the permission."""

from __future__ import annotations

import hl7
import pytest
from tests.factories import SYS
from tests.results.ingest_world import make_hubei, oru

from healthgrid.security import service as security

HL7 = {"content-type": "application/hl7-v2"}


@pytest.fixture
def world(session):
    hubei = make_hubei(session)
    tokens = {name: security.create_token(session, SYS, user_id=security.user_by_name(session, name).id,
                                          name=name).token for name in ("lis-first", "ris-renmin", "dr-first")}
    return hubei, tokens


def auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def test_a_message_is_answered_with_its_ack_and_report(secure_client, world):
    _, tokens = world
    r = secure_client.post("/api/results/hl7", content=oru(control="A-1", filler="AF-1"),
                           headers={**HL7, **auth(tokens["lis-first"])})
    assert r.status_code == 200
    body = r.json()
    ack = hl7.parse(body["ack"])
    assert (str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])) == ("AA", "A-1")
    assert body["report"]["status"] == "accepted" and body["report"]["created"]["Observation"] == 2


def test_a_refused_message_is_a_422_with_the_nak(secure_client, world):
    _, tokens = world
    r = secure_client.post("/api/results/hl7", content=oru(control="A-2", filler=""),
                           headers={"content-type": "text/plain", **auth(tokens["lis-first"])})
    assert r.status_code == 422
    msa = hl7.parse(r.json()["ack"]).segment("MSA")
    assert str(msa[1]) == "AE" and str(msa[3]).startswith("RES-181")
    assert r.json()["report"]["errors"][0]["field"] == "OBR-3"


def test_the_log_is_each_organisations_own_and_carries_no_content(secure_client, world):
    _, tokens = world
    secure_client.post("/api/results/hl7", content=oru(control="A-3", filler="AF-3"),
                       headers={**HL7, **auth(tokens["lis-first"])})
    mine = secure_client.get("/api/results/messages", headers=auth(tokens["lis-first"])).json()
    assert mine["total"] == 1 and mine["items"][0]["control_id"] == "A-3"
    assert "content_enc" not in mine["items"][0] and "content" not in mine["items"][0]
    one = secure_client.get(f"/api/results/messages/{mine['items'][0]['id']}", headers=auth(tokens["lis-first"]))
    assert one.status_code == 200 and one.json()["report"]["control_id"] == "A-3"
    theirs = secure_client.get("/api/results/messages", headers=auth(tokens["ris-renmin"])).json()
    assert theirs["total"] == 0
    hidden = secure_client.get(f"/api/results/messages/{mine['items'][0]['id']}", headers=auth(tokens["ris-renmin"]))
    assert hidden.status_code == 404


def test_only_a_sender_may_post_and_read_the_log(secure_client, world):
    _, tokens = world
    data = oru(control="A-4", filler="AF-4")
    assert secure_client.post("/api/results/hl7", content=data, headers=HL7).status_code == 401
    r = secure_client.post("/api/results/hl7", content=data, headers={**HL7, **auth(tokens["dr-first"])})
    assert r.status_code == 403 and r.json()["code"] == "SEC-102"
    assert secure_client.get("/api/results/messages", headers=auth(tokens["dr-first"])).status_code == 403


@pytest.mark.parametrize(("headers", "content", "code"), [
    ({"content-type": "application/json"}, b"{}", "RES-210"),
    (HL7, b"   ", "RES-020"),
    ({**HL7, "content-length": str(64 * 1024 * 1024)}, b"MSH|", "RES-210"),
])
def test_bodies_that_are_not_one_message_are_refused(secure_client, world, headers, content, code):
    _, tokens = world
    r = secure_client.post("/api/results/hl7", content=content, headers={**headers, **auth(tokens["lis-first"])})
    assert r.status_code == 422 and r.json()["code"] == code
