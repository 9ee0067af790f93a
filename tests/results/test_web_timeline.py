"""The patient's results page in Chinese (default) and English: days and facilities, values
with their flags (↑ ↓), reference ranges, the trend charts as SVG with the reference band
and a facility per marker, the images' links, filters; break-the-glass for a clinician
without a relationship; and the report on the patient's own timeline."""

from __future__ import annotations

import re

import pytest
from tests.results.results_world import make_world
from tests.security.test_web import _csrf

HTML = {"accept": "text/html"}
PASSWORD = "Results-pass-123"


@pytest.fixture
def world(session):
    w = make_world(session)
    session.commit()
    return w


def login(client, username: str) -> None:
    form = client.get("/login", headers=HTML)
    answer = client.post("/login", headers=HTML, follow_redirects=False,
                         data={"username": username, "password": PASSWORD, "csrf_token": _csrf(form.text)})
    assert answer.status_code == 303, answer.text


def test_the_page_shows_reports_by_day_and_facility_with_flags(client, world):
    r = world.results
    page = client.get(f"/patients/{world.patient}/results", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "<h1>检查检验结果" in text and "欧阳秀英" in text and "共 8 份报告" in text
    days = re.findall(r'data-day="([0-9-]+)"', text)
    assert days == ["2025-10-20", "2025-07-15", "2025-04-12", "2025-01-10"]
    april = text[text.index('data-day="2025-04-12"'):text.index('data-day="2025-01-10"')]
    assert f'data-org-id="{r.township_id}"' in april and "清河镇卫生院" in april and "3 项异常" in april
    def row(key: str) -> str:
        return re.search(rf'<tr class="[^"]*" data-observation-id="{r.observations[key]}".*?</tr>', text, re.S).group(0)

    crea = row("crea_mgdl")
    assert "res-row--high" in crea and "1.3" in crea and "↑" in crea and "0.6–1.1" in crea and "偏高" in crea
    hgb = row("hgb")
    assert "res-row--normal" in hgb and "↑" not in hgb and "115–150" in hgb
    assert "is-void" in row("cancelled") and "已作废" in row("cancelled")
    assert "颅内未见明显异常。" in text and "诊断意见（不属于互认内容）" in text
    assert f'href="/results/imaging/{r.study_id}/viewer"' in text and "查看影像" in text
    assert f'src="/results/imaging/{r.study_id}/preview"' in text
    assert 'class="badge res-mark"' in text and ">HR<" in text


def test_trends_are_svg_charts_with_the_band_and_a_marker_per_facility(client, world):
    text = client.get(f"/patients/{world.patient}/results", headers=HTML).text
    chart = re.search(r'<figure class="trend" data-trend="HBA1C" data-points="4">.*?</figure>', text, re.S).group(0)
    assert '<rect class="trend__band"' in chart and "参考范围 4–6 %" in chart
    assert chart.count('class="trend__point') == 4 and chart.count('data-abnormal="true"') == 3
    assert "2025-04-12 · 清河镇卫生院 · 58 mmol/mol ↑ · 折合 7.46 %" in chart
    legend = re.search(r'<ul class="trend__legend">.*?</ul>', chart, re.S).group(0)
    assert "永宁县人民医院" in legend and "清河镇卫生院" in legend
    assert 'data-trend="CREA" data-points="2"' in text
    glucose = client.get(f"/patients/{world.patient}/results", params={"trend": "GLU"}, headers=HTML).text
    assert 'data-trend="GLU" data-points="1"' in glucose


def test_the_page_speaks_english_and_filters(client, world):
    page = client.get(f"/patients/{world.patient}/results", params={"lang": "en", "category": "RAD"}, headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "<h1>Test results" in text and "View images" in text and "Imaging" in text
    assert re.findall(r'data-report-id="(\d+)"', text) == [str(world.results.reports["ct"])]
    assert "res.tl." not in text  # every label has its message
    bad = client.get(f"/patients/{world.patient}/results", params={"since": "15/07/2025"}, headers=HTML)
    assert bad.status_code == 200 and "data-bad-input" in bad.text
    backwards = client.get(f"/patients/{world.patient}/results", params={"since": "2025-07-15", "until": "2025-01-01"},
                           headers=HTML)
    assert backwards.status_code == 422 and 'data-error-code="RES-154"' in backwards.text


def test_a_clinician_without_a_relationship_breaks_the_glass(secure_client, session, world):
    login(secure_client, world.stranger.username)
    denied = secure_client.get(f"/patients/{world.patient}/results", headers=HTML)
    assert denied.status_code == 403 and 'data-view="results-break-glass"' in denied.text
    assert "欧阳" not in denied.text
    short = secure_client.post(f"/patients/{world.patient}/results/break-glass", headers=HTML,
                               data={"reason": "急诊", "csrf_token": _csrf(denied.text)})
    assert short.status_code == 403 and "至少需要 10 个字" in short.text
    reason = "急诊昏迷，需查看既往血糖和肾功能"
    glass = secure_client.post(f"/patients/{world.patient}/results/break-glass", headers=HTML,
                               data={"reason": reason, "csrf_token": _csrf(denied.text)})
    assert glass.status_code == 200 and 'data-break-glass="true"' in glass.text and reason in glass.text
    assert 'data-trend="HBA1C"' in glass.text


def test_the_patient_page_lists_the_reports(client, world):
    page = client.get(f"/patients/{world.patient}", params={"lang": "zh"}, headers=HTML).text
    assert page.count('data-kind="result"') == 8
    assert "永宁县人民医院出具报告：头部CT平扫" in page and "检查检验" in page
