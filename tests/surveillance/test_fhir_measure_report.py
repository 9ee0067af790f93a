"""Case counts as FHIR MeasureReport: the mapping against golden JSON (and strict R4 through
fhirclient's models), reads by id (a day, an ISO week, a zero count, ids that cannot be
reports), every search parameter through the app's /fhir, paging, coded refusals, and the
scope of a county CDC."""

from __future__ import annotations

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from fhirclient.models.bundle import Bundle as StrictBundle
from fhirclient.models.measurereport import MeasureReport as StrictMeasureReport

from healthgrid.app import create_app
from healthgrid.http import get_session
from healthgrid.registry import queries as registry_queries
from healthgrid.security.domain import Actor
from healthgrid.security.http import optional_actor

from .test_dashboard import A, B, build, cdc_user

HG = "https://healthgrid.example/fhir"


def cdc_org(session, code: str) -> int:
    return registry_queries.organization_by_code(session, f"CDC-{code}").id


def golden(org_id: int) -> dict:
    return {
        "resourceType": "MeasureReport",
        "id": "cases-3500-910102-2026-03-10",
        "status": "complete",
        "type": "summary",
        "measure": f"{HG}/Measure/cases-3500",
        "subject": {"reference": "Location/div-910102", "display": "永宁县"},
        "reporter": {"reference": f"Organization/{org_id}", "display": "永宁县疾病预防控制中心"},
        "period": {"start": "2026-03-10", "end": "2026-03-10"},
        "group": [{
            "code": {"coding": [{"system": f"{HG}/CodeSystem/nidris-disease", "code": "3500", "display": "流行性感冒"},
                                {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J09"},
                                {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J10"},
                                {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J11"}],
                     "text": "流行性感冒 Influenza"},
            "population": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population",
                                                 "code": "initial-population", "display": "Initial Population"}]},
                            "count": 2}],
            "measureScore": {"value": 2, "unit": "cases", "system": "http://unitsofmeasure.org", "code": "{cases}"},
        }],
    }


def test_a_day_of_one_disease_in_one_county_reads_as_golden_json(client, session):
    build(session)
    r = client.get("/fhir/MeasureReport/cases-3500-910102-2026-03-10")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == golden(cdc_org(session, A))  # ICD-10 J09-J11: the catalogue's codes of influenza
    StrictMeasureReport(body, strict=True)  # valid R4


def test_weeks_zero_counts_and_ids_that_are_no_report(client, session):
    build(session)
    week = client.get("/fhir/MeasureReport/cases-3500-910102-2026-W11").json()
    assert week["period"] == {"start": "2026-03-09", "end": "2026-03-15"}
    assert week["group"][0]["population"][0]["count"] == 4
    zero = client.get("/fhir/MeasureReport/cases-1400-910102-2026-03-10").json()
    assert zero["group"][0]["population"][0]["count"] == 0 and zero["group"][0]["measureScore"]["value"] == 0
    StrictMeasureReport(zero, strict=True)
    for rid in ("cases-3500-910102-2026-02-30", "cases-3500-910102-2999-01-01", "cases-ZZZZ-910102-2026-03-10",
                "cases-3500-999999-2026-03-10", "cases-3500-910102-2026-W54", "cases-3500-910102-1999-03-10",
                "3500-910102-2026-03-10"):
        r = client.get(f"/fhir/MeasureReport/{rid}")
        assert r.status_code == 404, (rid, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_search_by_period_subject_reporter_measure_and_interval(client, session):
    build(session)
    day = client.get("/fhir/MeasureReport", params=[("period", "ge2026-03-09"), ("period", "le2026-03-10"),
                                                    ("subject", "Location/div-910102")]).json()
    assert _ids(day) == ["cases-3500-910102-2026-03-09", "cases-0100-910102-2026-03-10",
                         "cases-3500-910102-2026-03-10"] and day["total"] == 3
    StrictBundle(day, strict=True)
    both = client.get("/fhir/MeasureReport", params={"period": "2026-03-10"}).json()
    assert _ids(both) == ["cases-0100-910102-2026-03-10", "cases-3500-910102-2026-03-10",
                          "cases-3500-910103-2026-03-10"]
    assert both["entry"][2]["resource"]["group"][0]["population"][0]["count"] == 2
    plague = client.get("/fhir/MeasureReport", params={"period": "2026-03", "measure": "Measure/cases-0100"}).json()
    assert _ids(plague) == ["cases-0100-910102-2026-03-10"]
    by_cdc = client.get("/fhir/MeasureReport", params={"period": "2026-03-10",
                                                       "reporter": f"Organization/{cdc_org(session, B)}"}).json()
    assert _ids(by_cdc) == ["cases-3500-910103-2026-03-10"]
    weekly = client.get("/fhir/MeasureReport", params={"period": "2026-03-10", "interval": "week",
                                                       "subject": "div-910102", "measure": "cases-3500"}).json()
    assert _ids(weekly) == ["cases-3500-910102-2026-W11"]
    assert weekly["entry"][0]["resource"]["group"][0]["population"][0]["count"] == 4


def test_search_pages_with_a_total_and_refuses_what_it_cannot_run(client, session):
    build(session)
    first = client.get("/fhir/MeasureReport", params={"period": "2026-03-10", "_count": "1"}).json()
    assert first["total"] == 3 and len(first["entry"]) == 1
    assert any(link["relation"] == "next" for link in first["link"])
    last = client.get("/fhir/MeasureReport", params={"period": "2026-03-10", "_count": "1", "_offset": "2"}).json()
    assert _ids(last) == ["cases-3500-910103-2026-03-10"]
    none = client.get("/fhir/MeasureReport", params={"period": "2026-03-10", "subject": "Location/div-910102",
                                                     "reporter": f"Organization/{cdc_org(session, B)}"}).json()
    assert none["total"] == 0
    for params, code in (({"period": "le2026-03-10"}, "FHIR"), ({"period": "ge2020-01-01"}, "SURV-604"),
                         ({"period": "2026-03-10T10:00:00+08:00"}, "FHIR"), ({"period": "ne2026-03-10"}, "FHIR"),
                         ({"period": "2026-03-10", "interval": "month"}, "FHIR"),
                         ({"_id": "cases-3500-910102-2026-03-10", "period": "2026-03-10"}, "FHIR")):
        r = client.get("/fhir/MeasureReport", params=params)
        assert r.status_code == 400, (params, r.text)
        issue = r.json()["issue"][0]
        assert code in str(issue), (params, issue)


@pytest.fixture
def cdc_client(settings, session):
    w = build(session)
    actor = cdc_user(session, w.county_a)
    app = create_app(settings)

    async def cdc(request: Request) -> Actor:
        request.state.actor = actor
        return actor

    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[optional_actor] = cdc
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def test_a_county_cdc_sees_its_county_and_is_refused_another(cdc_client):
    mine = cdc_client.get("/fhir/MeasureReport", params={"period": "2026-03-10"}).json()
    assert _ids(mine) == ["cases-0100-910102-2026-03-10", "cases-3500-910102-2026-03-10"]
    refused = cdc_client.get("/fhir/MeasureReport", params={"period": "2026-03-10", "subject": "Location/div-910103"})
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    assert cdc_client.get("/fhir/MeasureReport/cases-3500-910103-2026-03-10").status_code == 403
    assert cdc_client.get("/fhir/MeasureReport/cases-3500-910102-2026-03-10").status_code == 200
