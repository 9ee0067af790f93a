"""The recognition pages in Chinese and English: the ordering doctor finds the patient, picks
the test, sees the recognisable result (mark, where, when, values, validity) and why the
others are not, recognises it or repeats with a reason (errors kept on the form), and sees
the saved decision; the measures page for the bureau and a facility; who may see what; and a
real log-in posting with its CSRF token. The pages use the real clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from tests.factories import SYS
from tests.referrals.conftest import staff
from tests.security.test_web import _csrf

from healthgrid.app import create_app
from healthgrid.db import utcnow
from healthgrid.http import get_session
from healthgrid.results import ordering
from healthgrid.results.domain import CN_TZ
from healthgrid.security import service as security
from healthgrid.security.domain import Actor
from healthgrid.security.http import optional_actor

from .world_recognition import GLU, add_report, make_world

HTML = {"accept": "text/html"}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def pages(settings, session):
    """The app acting as whoever ``who["actor"]`` holds (the county hospital's doctor first)."""
    w = make_world(session)
    session.commit()
    who = {"actor": w.doctor}
    app = create_app(settings)

    async def as_user(request: Request) -> Actor:
        actor = who["actor"]
        request.state.actor = actor
        request.state.web_user = {"name": actor.username, "username": actor.username, "csrf": "", "mfa": True,
                                  "needs_mfa": False, "perms": {str(p) for p in actor.perms()}}
        return actor

    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[optional_actor] = as_user
    with TestClient(app) as client:
        yield client, w, who
    app.state.engine.dispose()


def _offer(session, w):
    now = utcnow()
    good = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=2, now=now, values=GLU)
    old = add_report(session, patient=w.patient, issuer=w.region.county_hospital, item="GLU", days_ago=40, now=now,
                     values=(("GLU", 7.9, "mmol/L", 3.9, 6.1, "H"),))
    return good, old


def _check(client, w, item="GLU") -> str:
    resp = client.post("/results/order", data={"org": w.region.county_hospital.id, "patient_id": w.patient,
                                               "item": item}, headers=HTML, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return resp.headers["location"]


def test_the_doctor_finds_the_patient_and_picks_the_test(pages):
    client, w, _who = pages
    page = client.get("/results/order", headers=HTML)
    assert page.status_code == 200 and "检查检验结果互认" in page.text and 'name="rid"' in page.text
    found = client.get("/results/order", params={"name": "周桂兰"}, headers=HTML)
    assert f'data-patient-id="{w.patient}"' in found.text
    chosen = client.get("/results/order", params={"patient": w.patient}, headers=HTML)
    text = text_of(chosen.text)
    assert chosen.status_code == 200 and "周桂兰" in text and '<optgroup label="检验">' in chosen.text
    assert '<option value="GLU">葡萄糖（GLU）</option>' in chosen.text and '<optgroup label="影像检查">' in chosen.text


def test_the_offer_in_chinese_then_recognised(pages, session):
    client, w, _who = pages
    good, old = _offer(session, w)
    where = _check(client, w)
    page = client.get(where, headers=HTML)
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "可互认的既往结果" in text and "安平市第一人民医院" in text and "地市级" in text
    assert 'data-mark>HR</span>' in page.text and "5.4" in text and "3.9–6.1" in text and "有效期至" in text
    valid = ((good.issued_at.astimezone(CN_TZ)).date() + timedelta(days=30)).isoformat()
    assert valid in text and "采用此结果（不重复检查）" in text and "仍需检查" in text
    assert f'<tr data-report-id="{old.id}">' in page.text and "已过有效期：40天（有效期30天）" in text
    done = client.post(where, data={"action": "accept", "report_id": good.id}, headers=HTML, follow_redirects=False)
    assert done.status_code == 303
    saved = client.get(where, headers=HTML)
    text = text_of(saved.text)
    assert "已记录：采用既往结果，不重复检查。" in text and "已互认：采用 安平市第一人民医院" in text
    assert 'data-outcome="recognised"' in saved.text and "采用此结果（不重复检查）" not in text


def test_the_offer_in_english_and_a_repeat_with_its_errors(pages, session):
    client, w, _who = pages
    _offer(session, w)
    where = _check(client, w)
    page = client.get(where + "?lang=en", headers=HTML)
    text = text_of(page.text)
    assert "Recognisable prior results" in text and "Recognise this result (no repeat)" in text
    assert "expired: 40 days old (valid 30 days)" in text and '<optgroup label="National situations">' in page.text
    bad = client.post(where + "?lang=en", data={"action": "repeat", "reason": "other"}, headers=HTML)
    assert bad.status_code == 422 and 'data-error-code="RES-013"' in bad.text
    assert '<option value="other" selected>' in bad.text  # the form keeps what was chosen
    uninformed = client.post(where + "?lang=zh", data={"action": "repeat", "reason": "changed_condition"}, headers=HTML)
    assert 'data-error-code="RES-014"' in uninformed.text and "请确认已告知患者" in uninformed.text
    ok = client.post(where, data={"action": "repeat", "reason": "other", "text": "外院结果与临床表现不符",
                                  "informed": "1"}, headers=HTML, follow_redirects=False)
    assert ok.status_code == 303
    saved = text_of(client.get(where + "?lang=en", headers=HTML).text)
    assert "Repeated: another situation that needs a repeat (stated): 外院结果与临床表现不符" in saved
    assert "patient informed" in saved


def test_no_prior_result_is_ordered_at_once(pages):
    client, w, _who = pages
    page = client.get(_check(client, w, item="CT-HEAD"), headers=HTML)
    text = text_of(page.text)
    assert "无既往结果，开具检查" in text and "该患者在本地区没有该项目的既往结果。" in text
    assert 'data-outcome="repeat_no_prior"' in page.text


def test_a_bad_test_choice_stays_on_the_form(pages):
    client, w, _who = pages
    resp = client.post("/results/order", data={"org": w.region.county_hospital.id, "patient_id": w.patient,
                                               "item": ""}, headers=HTML)
    assert resp.status_code == 422 and 'data-error-code="RES-120"' in resp.text
    assert "请选择目录中的检查检验项目" in resp.text


def test_who_may_see_the_pages(pages, session):
    client, w, who = pages
    where = _check(client, w)
    who["actor"] = w.outsider
    refused = client.get(where, headers=HTML)
    assert refused.status_code == 403 and 'data-error-code="SEC-103"' in refused.text
    who["actor"] = w.nurse
    assert client.get("/results/order", headers=HTML).status_code == 403
    assert client.get("/results/measures", headers=HTML).status_code == 403


def test_the_measures_page_for_the_bureau_and_a_facility(pages, session):
    client, w, who = pages
    good, _old = _offer(session, w)
    where = _check(client, w)
    client.post(where, data={"action": "accept", "report_id": good.id}, headers=HTML)
    _check(client, w, item="CT-HEAD")
    user = security.create_user(session, SYS, username="web-bureau", display_name="县卫健局", password="Bureau-pass-1",
                                grants=[security.parse_grant("commission_admin", "division", w.region.county.id)])
    who["actor"] = security.actor_for(session, user, surface="web", client=None, mfa=True)
    page = client.get("/results/measures", headers=HTML)
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "检查检验结果互认统计" in text and "永宁县人民医院" in text and "<svg" in page.text
    assert 'data-stat="orders"><span class="stat__value">2<' in page.text and "50.0%" in text and "¥4" in text
    assert 'data-table="facilities"' in page.text and "<script" not in page.text
    who["actor"] = staff(session, w.region.county_hospital.id, username="web-admin", role="facility_admin")
    own = client.get("/results/measures?lang=en", headers=HTML)
    text = text_of(own.text)
    assert own.status_code == 200 and "Result recognition measures" in text and "永宁县人民医院: per month" in text
    assert 'data-table="facility-months"' in own.text and "Recognition rate" in text


def test_a_real_log_in_posts_with_its_csrf_token(secure_client, session):
    w = make_world(session, prefix="92")
    session.commit()
    form = secure_client.get("/login", headers=HTML)
    answer = secure_client.post("/login", headers=HTML, follow_redirects=False, data={
        "username": w.doctor.username, "password": "Doctor-pass-123", "csrf_token": _csrf(form.text)})
    assert answer.status_code == 303, answer.text
    page = secure_client.get("/results/order", params={"patient": w.patient}, headers=HTML)
    assert page.status_code == 200 and "结果互认" in page.text  # the navigation entry
    data = {"org": w.region.county_hospital.id, "patient_id": w.patient, "item": "K"}
    forged = secure_client.post("/results/order", data=data, headers=HTML, follow_redirects=False)
    assert forged.status_code == 403 and "SEC-108" in forged.text
    ok = secure_client.post("/results/order", data={**data, "csrf_token": _csrf(page.text)}, headers=HTML,
                            follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/results/order/")
    decision = int(ok.headers["location"].rsplit("/", 1)[1])
    assert ordering.get_decision(session, SYS, decision).outcome == "repeat_no_prior"
