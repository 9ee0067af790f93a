"""The signal pages and the feed upload with real users (``secure_client``, logged in through
the pages): the list with its tabs and the overdue highlight in Chinese and English, one
signal with its chart, the response forms (and a stale one), the warning products drafted,
issued and printed, the CSV upload's report, and a county CDC kept out of another county.

The pages use the real clock, so signals are raised relative to now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from tests.security.test_web import _csrf

from healthgrid.surveillance import signals
from healthgrid.surveillance.detection_methods import Alarm
from healthgrid.surveillance.models import Signal

from .signal_fixtures import daily_cards, history, insert_cards, make_world

HTML = {"accept": "text/html"}
PASSWORD = "Signal-pass-123"
VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def login(client, username: str) -> None:
    form = client.get("/login", headers=HTML)
    answer = client.post("/login", headers=HTML, follow_redirects=False,
                         data={"username": username, "password": PASSWORD, "csrf_token": _csrf(form.text)})
    assert answer.status_code == 303, answer.text


@pytest.fixture
def world(session):
    w = make_world(session)
    today = datetime.now(UTC).date()
    days = history(today - timedelta(days=40), today - timedelta(days=1))
    insert_cards(session, daily_cards("3600", w.county(0), days))
    session.commit()
    return w


def raise_at(session, world, county=0, *, hours_ago=2, stream="case:3600", method="mpm") -> int:
    now = datetime.now(UTC) - timedelta(hours=hours_ago)
    alarm = Alarm(stream, stream[5:] if stream.startswith("case:") else None, world.county(county), method,
                  (now - timedelta(days=1)).date(), 12.0, 7.0, {"percentile": 80})
    sid = signals.raise_signal(session, alarm, now=now).signal_id
    session.commit()
    return sid


def post(client, page_html: str, url: str, data: dict):
    return client.post(url, headers=HTML, follow_redirects=False, data={"csrf_token": _csrf(page_html), **data})


def test_the_list_shows_tabs_and_marks_overdue_signals_in_chinese_and_english(secure_client, session, world):
    late = raise_at(session, world, hours_ago=30)
    fresh = raise_at(session, world, stream="fever:ILI", method="cusum")
    login(secure_client, world.epi_a.username)
    page = secure_client.get("/surveillance/signals", headers=HTML)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "预警信号" in text and "待核实" in text and "超时未核实" in text and "流行性腮腺炎" in text
    assert f'data-signal-id="{late}" data-status="generated" class="is-overdue"' in page.text
    assert f'data-signal-id="{fresh}" data-status="generated" class=""' in page.text
    assert 'href="/surveillance/signals"' in page.text  # the nav item
    english = text_of(secure_client.get("/surveillance/signals?lang=en", headers=HTML).text)
    assert "Early-warning signals" in english and "Overdue" in english and "Mumps" in english
    overdue_only = secure_client.get("/surveillance/signals?tab=all&overdue=1&lang=zh", headers=HTML).text
    assert f'data-signal-id="{late}"' in overdue_only and f'data-signal-id="{fresh}"' not in overdue_only
    closed_tab = secure_client.get("/surveillance/signals?tab=closed", headers=HTML).text
    assert "没有符合条件的预警信号" in text_of(closed_tab)


def test_a_signal_page_has_its_chart_and_the_response_moves_it_on(secure_client, session, world):
    sid = raise_at(session, world)
    login(secure_client, world.epi_a.username)
    page = secure_client.get(f"/surveillance/signals/{sid}", headers=HTML)
    assert page.status_code == 200
    assert '<svg class="sig-chart"' in page.text and 'data-series="threshold"' in page.text
    assert "移动百分位数法" in page.text and "初步核实" in page.text
    version = VERSION_RE.search(page.text).group(1)
    done = post(secure_client, page.text, f"/surveillance/signals/{sid}/verify",
                {"version": version, "outcome": "suspected", "note": "同一学校多个班级发病"})
    assert done.status_code == 303
    after = secure_client.get(done.headers["location"], headers=HTML)
    assert "已记录初步核实结果" in after.text and 'data-status="suspected"' in after.text
    stale = post(secure_client, after.text, f"/surveillance/signals/{sid}/investigate", {"version": version})
    refused = secure_client.get(stale.headers["location"], headers=HTML)
    assert 'data-error-code="SURV-402"' in refused.text and "已被他人修改" in refused.text
    session.expire_all()
    assert session.get(Signal, sid).status == "suspected"
    english = secure_client.get(f"/surveillance/signals/{sid}?lang=en", headers=HTML).text
    assert "Why it was raised" in english and "Start field investigation" in english


def test_a_warning_product_is_drafted_issued_and_printed(secure_client, session, world):
    sid = raise_at(session, world)
    login(secure_client, world.epi_a.username)
    page = secure_client.get(f"/surveillance/signals/{sid}", headers=HTML)
    drafted = post(secure_client, page.text, f"/surveillance/signals/{sid}/warnings", {"product": "risk_notice"})
    assert drafted.status_code == 303
    page = secure_client.get(f"/surveillance/signals/{sid}", headers=HTML)
    wid = re.search(r'data-warning-id="(\d+)"', page.text).group(1)
    assert "健康风险提示" in page.text and 'name="issue"' not in page.text  # not verified: no issue button
    version = VERSION_RE.search(page.text).group(1)
    post(secure_client, page.text, f"/surveillance/signals/{sid}/verify",
         {"version": version, "outcome": "suspected", "note": "疑似暴发"})
    page = secure_client.get(f"/surveillance/signals/{sid}", headers=HTML)
    issued = post(secure_client, page.text, f"/surveillance/warnings/{wid}",
                  {"signal_id": str(sid), "title": "永宁县流行性腮腺炎健康风险提示",
                   "body": "近期病例增多。\n请注意防护。", "issue": "1"})
    assert issued.status_code == 303
    page = secure_client.get(f"/surveillance/signals/{sid}", headers=HTML)
    assert "预警产品已发布" in page.text and 'data-status="issued"' in page.text
    printed = secure_client.get(f"/surveillance/warnings/{wid}/print", headers=HTML)
    assert printed.status_code == 200
    assert "永宁县疾病预防控制中心" in printed.text and "<p>请注意防护。</p>" in printed.text
    assert "data-draft" not in printed.text
    assert "Audience" in secure_client.get(f"/surveillance/warnings/{wid}/print?lang=en", headers=HTML).text


def test_a_county_cdc_does_not_open_another_countys_signal(secure_client, session, world):
    sid = raise_at(session, world, 0)
    login(secure_client, world.epi_b.username)
    assert secure_client.get(f"/surveillance/signals/{sid}", headers=HTML).status_code == 403
    assert f'data-signal-id="{sid}"' not in secure_client.get("/surveillance/signals", headers=HTML).text


def test_a_csv_upload_shows_its_report(secure_client, session, world):
    login(secure_client, world.epi_a.username)
    page = secure_client.get("/surveillance/feeds", headers=HTML)
    assert page.status_code == 200 and "监测数据上报" in page.text and "流感样病例" in page.text
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    good = (f"source,division_code,date,metric,count,total\nH1,{world.county()},{day},ILI,12,240\n"
            f"H1,{world.county()},{day},SARI,2,240\n")
    answer = secure_client.post("/surveillance/feeds", headers=HTML, data={"csrf_token": _csrf(page.text),
                                                                           "feed": "fever"},
                                files={"file": ("ili.csv", good.encode("gb18030"), "text/csv")})
    assert answer.status_code == 200 and 'data-report-status="accepted"' in answer.text
    assert "新增 2" in answer.text and "ili.csv" in answer.text
    bad = good.replace(",12,240", ",12,2")
    answer = secure_client.post("/surveillance/feeds", headers=HTML, data={"csrf_token": _csrf(page.text),
                                                                           "feed": "fever"},
                                files={"file": ("ili.csv", bad.encode(), "text/csv")})
    assert answer.status_code == 422 and 'data-report-status="rejected"' in answer.text
    assert 'data-row="1" data-code="SURV-510"' in answer.text and "全部数据均未写入" in answer.text
    english = secure_client.get("/surveillance/feeds?lang=en", headers=HTML).text
    assert "Feed upload" in english and "Influenza-like illness" in english
