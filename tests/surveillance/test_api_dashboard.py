"""The dashboard API (/api/surveillance/dashboard/...): its JSON contract on the hand-made data
set, the scope of a county CDC, and bounded parameters answered with coded 4xx, never 5xx."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from healthgrid.app import create_app
from healthgrid.http import get_session
from healthgrid.security.domain import Actor
from healthgrid.security.http import optional_actor

from .test_dashboard import A, B, D, build, cdc_user

URL = "/api/surveillance/dashboard"
PERIOD = {"since": (D - timedelta(days=2)).isoformat(), "until": (D + timedelta(days=1)).isoformat()}


@pytest.fixture
def as_cdc(settings, session):
    """The API acting as county A's epidemiologist."""
    w = build(session)
    actor = cdc_user(session, w.county_a)
    app = create_app(settings)

    async def cdc(request: Request) -> Actor:
        request.state.actor = actor
        return actor

    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[optional_actor] = cdc
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_summary_lists_signals_by_status_and_the_top_diseases(client, session):
    build(session)
    body = client.get(f"{URL}/summary", params={**PERIOD, "county": A}).json()
    assert body["total"] == 5 and body["open_now"] == 4
    assert body["by_status"]["field_investigation"] == 1 and body["by_status"]["confirmed"] == 0
    assert {"stream": "case:0100", "signals": 1, "open": 1} in body["by_stream"]
    assert body["by_method"] == {"mpm": 3, "fixed": 1, "ears_c3": 1}
    assert body["top_diseases"] == [{"disease": "3500", "cases": 8, "last_year": 7},
                                    {"disease": "0100", "cases": 1, "last_year": 0}]


def test_curve_returns_counts_threshold_and_signals(client, session):
    w = build(session)
    body = client.get(f"{URL}/curve", params={"stream": "case:3500", "county": A, "since": D.isoformat(),
                                              "until": D.isoformat()}).json()
    assert (body["method"], body["percentile"], body["weekly"], body["counties"]) == ("mpm", 75, False, [A])
    assert body["points"] == [{"start": D.isoformat(), "end": D.isoformat(), "count": 2, "total": None,
                               "statistic": 8.0, "threshold": 7.0, "alarm": True, "signals": [w.signals["fast"]]}]
    weekly = client.get(f"{URL}/curve", params={"disease": "3500", "county": A, "weekly": "true",
                                                "since": D.isoformat(), "until": D.isoformat()}).json()
    assert [(p["start"], p["end"], p["count"]) for p in weekly["points"]] == [("2026-03-09", "2026-03-15", 4)]


def test_map_and_kpis(client, session):
    build(session)
    m = client.get(f"{URL}/map", params={"since": D.isoformat(), "until": D.isoformat()}).json()
    assert [(c["code"], c["in_scope"], c["open_signals"], c["cases"]) for c in m["counties"]] == [
        (A, True, 4, 3), (B, True, 1, 2)]
    assert len(m["box"]) == 4 and all(len(c["cell"]) >= 4 for c in m["counties"])
    k = client.get(f"{URL}/kpis", params={**PERIOD, "county": A}).json()
    assert k["median_response_hours"] == 3.0 and k["signals"] == 5
    assert k["suspected_rate"] == {"numerator": 1, "denominator": 3, "value": pytest.approx(1 / 3)}
    assert k["report_timeliness"]["numerator"] == 5 and k["cards"] == 6


def test_a_county_cdc_is_kept_to_its_county(as_cdc):
    mine = as_cdc.get(f"{URL}/summary", params=PERIOD)
    assert mine.status_code == 200 and mine.json()["total"] == 5
    other = as_cdc.get(f"{URL}/curve", params={**PERIOD, "stream": "case:3500", "county": B})
    assert other.status_code == 403 and other.json()["code"] == "SEC-103"
    m = as_cdc.get(f"{URL}/map", params=PERIOD).json()
    assert [(c["code"], c["in_scope"], c["cases"]) for c in m["counties"]] == [(A, True, 6), (B, False, None)]


@pytest.mark.parametrize("path, params, status, code", [
    ("curve", {"stream": "case:3500", "since": "2026-03-01", "until": "2026-02-01"}, 422, "SURV-603"),
    ("curve", {"stream": "case:3500", "since": "0001-01-01", "until": "2026-02-01"}, 422, "SURV-603"),
    ("curve", {"stream": "case:3500", "since": "2020-01-01", "until": "2026-02-01"}, 422, "SURV-604"),
    ("curve", {"stream": "case:3500", "since": "9999-12-31", "until": "9999-12-31", "weekly": "true"}, 422,
     "SURV-603"),
    ("curve", {"stream": "x" * 40, "since": "2026-03-01", "until": "2026-03-02"}, 422, "SURV-602"),
    ("curve", {"since": "2026-03-01", "until": "2026-03-02"}, 422, "SURV-602"),
    ("curve", {"stream": "case:3500", "disease": "3500", "since": "2026-03-01", "until": "2026-03-02"}, 422,
     "SURV-602"),
    ("curve", {"disease": "ZZ", "since": "2026-03-01", "until": "2026-03-02"}, 422, "SURV-602"),
    ("curve", {"stream": "case:3500", "county": "91010", "since": "2026-03-01", "until": "2026-03-02"}, 422,
     "SURV-601"),
    ("kpis", {"since": "2026-03-01", "until": "2026-03-02", "county": "abcdef"}, 422, "SURV-601"),
    ("map", {"since": "2026-03-01"}, 422, None),
    ("summary", {"since": "2026-02-30", "until": "2026-03-02"}, 422, None),
])
def test_bad_parameters_get_a_4xx(client, path, params, status, code):
    r = client.get(f"{URL}/{path}", params=params)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["code"] == code
