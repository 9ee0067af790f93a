"""The dashboard page (/surveillance) in Chinese and English, as a county CDC sees it: the KPI
tiles, the status links, the map and the epidemic curve as server-rendered SVG, no script."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from healthgrid.app import create_app
from healthgrid.http import get_session
from healthgrid.security.domain import Actor
from healthgrid.security.http import optional_actor

from .test_dashboard import A, B, D, build, cdc_user


@pytest.fixture
def cdc_page(settings, session):
    w = build(session)
    actor = cdc_user(session, w.county_a)
    app = create_app(settings)

    async def as_cdc(request: Request) -> Actor:
        request.state.actor = actor
        request.state.web_user = {"name": "县疾控", "username": actor.username, "csrf": "", "mfa": True,
                                  "needs_mfa": False, "perms": {str(p) for p in actor.perms()}}
        return actor

    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[optional_actor] = as_cdc
    with TestClient(app) as client:
        yield client, w
    app.state.engine.dispose()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


PERIOD = {"since": (D - timedelta(days=2)).isoformat(), "until": (D + timedelta(days=1)).isoformat()}


def test_the_dashboard_shows_tiles_status_links_map_and_curve_in_chinese(cdc_page):
    client, _w = cdc_page
    page = client.get("/surveillance", params=PERIOD)
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "传染病监测预警" in text and "统计范围：永宁县" in text and "2026-03-08 至 2026-03-11" in text
    # Today every signal of the data set is past its 24-hour clock: 3 of 5 verified.
    assert "信号响应率" in text and "60.0%" in text and "3 / 5" in text
    assert "24小时内响应率" in text and "40.0%" in text and "3.0 小时" in text and "83.3%" in text
    assert 'href="/surveillance/signals?status=notified&amp;since=2026-03-08&amp;until=2026-03-11"' in page.text
    assert 'data-figure="map"' in page.text and f'data-county="{A}"' in page.text and f'data-county="{B}"' in page.text
    assert 'data-figure="curve"' in page.text and 'data-method="mpm"' in page.text
    assert "流行曲线：流行性感冒" in text and "预警阈值" in text and 'class="line-threshold"' in page.text
    assert "近7天报告病例前十位" in text and 'data-disease="3500"' in page.text
    assert "<script" not in page.text and "/surveillance/assets/surveillance.css" in page.text
    assert "王小明" not in page.text  # never a patient's data


def test_the_dashboard_in_english_with_weekly_bars_and_a_feed_stream(cdc_page):
    client, _w = cdc_page
    page = client.get("/surveillance", params={**PERIOD, "lang": "en", "interval": "week", "colour": "cases",
                                               "stream": "case:0100"})
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "Infectious-disease surveillance" in text and "Epidemic curve: Plague" in text
    assert 'data-method="fixed"' in page.text and "W11" in text and "Reported cases" in text
    assert "Fixed threshold: one case is a signal." in text
    feed = client.get("/surveillance", params={**PERIOD, "lang": "en", "stream": "fever:ILI"})
    assert feed.status_code == 200 and 'data-method="ears_c3"' in feed.text and "Fever clinics: Influenza-like" \
        in _text(feed.text)


def test_a_county_outside_the_scope_and_bad_input_are_answered_on_the_page(cdc_page):
    client, _w = cdc_page
    refused = client.get("/surveillance", params={**PERIOD, "county": B})
    assert refused.status_code == 403 and "SEC-103" in refused.text
    bad = client.get("/surveillance", params={"since": "2026-13-01", "stream": "nonsense"})
    assert bad.status_code == 422 and "SURV-602" in bad.text and "参数格式有误" in bad.text


def test_the_stylesheet_is_served_and_nothing_else(cdc_page):
    client, _w = cdc_page
    css = client.get("/surveillance/assets/surveillance.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and ".kpi" in css.text
    assert client.get("/surveillance/assets/other.js").status_code == 404
