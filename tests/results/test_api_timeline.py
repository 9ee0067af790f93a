"""The results API: a patient's timeline by day and facility with its trends, one analyte's
trend, one report; the refusals real users meet (and break-the-glass through the header)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select
from tests.factories import SYS
from tests.results.results_world import make_world

from healthgrid.security import service as security
from healthgrid.security.models import AuditEvent


@pytest.fixture
def world(session):
    return make_world(session)


def bearer(session, actor) -> dict:
    return {"Authorization": f"Bearer {security.create_token(session, SYS, user_id=actor.user_id, name='t').token}"}


def test_the_timeline_lists_days_then_facilities_with_values_and_trends(client, world):
    r = world.results
    body = client.get(f"/api/results/patients/{world.patient}/timeline").json()
    assert body["reports"] == 8 and body["patient_name"] == "欧阳秀英" and not body["truncated"]
    assert [d["day"] for d in body["days"]] == ["2025-10-20", "2025-07-15", "2025-04-12", "2025-01-10"]
    april = body["days"][2]["facilities"]
    assert [f["org_id"] for f in april] == [r.township_id] and april[0]["name"] == "清河镇卫生院"
    chem = next(x for x in april[0]["reports"] if x["id"] == r.reports["chem"])
    crea = chem["observations"][0]
    assert (crea["display"], crea["value_num"], crea["unit"], crea["ref_low"], crea["ref_high"], crea["flag"]) == (
        "肌酐", 1.3, "mg/dL", 0.6, 1.1, "H")
    ct = next(x for x in body["days"][1]["facilities"][0]["reports"] if x["id"] == r.reports["ct"])
    assert ct["studies"][0]["study_uid"] == r.study_uid and ct["conclusion"] == "颅内未见明显异常。"
    trend = body["trends"][0]
    assert trend["key"] == "HBA1C" and trend["unit"] == "%" and (trend["band_low"], trend["band_high"]) == (4, 6)
    assert [p["issuer_org_id"] for p in trend["points"]] == [r.hospital_id, r.township_id, r.hospital_id,
                                                              r.hospital_id]
    assert [p["abnormal"] for p in trend["points"]] == [True, True, True, False]


def test_the_timeline_filters_by_category_and_days(client, world):
    r = world.results
    rad = client.get(f"/api/results/patients/{world.patient}/timeline", params={"category": "RAD"}).json()
    assert [x["id"] for d in rad["days"] for f in d["facilities"] for x in f["reports"]] == [r.reports["ct"]]
    spring = client.get(f"/api/results/patients/{world.patient}/timeline",
                        params={"since": "2025-04-12", "until": "2025-07-15"}).json()
    assert [d["day"] for d in spring["days"]] == ["2025-07-15", "2025-04-12"]
    backwards = client.get(f"/api/results/patients/{world.patient}/timeline",
                           params={"since": "2025-07-15", "until": "2025-04-12"})
    assert backwards.status_code == 422 and backwards.json()["code"] == "RES-154"
    assert client.get(f"/api/results/patients/{world.patient}/timeline", params={"category": "XR"}).status_code == 422


def test_a_trend_converts_units_and_names_the_facility(client, world):
    body = client.get(f"/api/results/patients/{world.patient}/trends", params={"item": "CREA"}).json()
    assert body["unit"] == "umol/L" and body["name"] == "肌酐"
    assert [(round(p["value"], 1), p["reported"], p["issuer_name"]) for p in body["points"]] == [
        (114.9, "1.3 mg/dL", "清河镇卫生院"), (96.0, "96 umol/L", "永宁县人民医院")]
    unknown = client.get(f"/api/results/patients/{world.patient}/trends", params={"item": "NOPE"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "RES-155"
    assert client.get(f"/api/results/patients/{world.patient}/trends").status_code == 422


def test_one_report_with_its_values(client, world):
    body = client.get(f"/api/results/reports/{world.results.reports['cbc']}").json()
    assert [o["display"] for o in body["observations"]] == ["白细胞计数", "血红蛋白"]
    missing = client.get("/api/results/reports/2147483647")
    assert missing.status_code == 404 and missing.json()["code"] == "RES-151"


def test_access_over_the_api(secure_client, session, world):
    url = f"/api/results/patients/{world.patient}/timeline"
    refused = secure_client.get(url, headers=bearer(session, world.stranger))
    assert refused.status_code == 403 and refused.json()["code"] == "SEC-104"
    glass = secure_client.get(url, headers={**bearer(session, world.stranger),
                                            "X-Break-Glass-Reason": quote("急诊抢救，需要既往肾功能结果")})
    assert glass.status_code == 200 and glass.json()["reports"] == 8
    flagged = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "ResultTimeline",
                                                       AuditEvent.username == world.stranger.username,
                                                       AuditEvent.outcome == "success")).all()
    assert flagged and flagged[-1].break_glass == "急诊抢救，需要既往肾功能结果"
    lis = secure_client.get(url, headers=bearer(session, world.lis))
    assert lis.status_code == 403 and lis.json()["code"] == "SEC-102"
    own = secure_client.get(url, headers=bearer(session, world.resident))
    assert own.status_code == 200 and own.json()["patient_id"] == world.patient
    other = secure_client.get(f"/api/results/patients/{world.other_patient}/trends", params={"item": "HBA1C"},
                              headers=bearer(session, world.resident))
    assert other.status_code == 403
    assert secure_client.get(url).status_code == 401
