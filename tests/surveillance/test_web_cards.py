"""Report-card pages with real users logged in through the pages (``secure_client``): the
navigation entry, the lists' tabs in Chinese and English, the form laid out like the national
card, the one-click prefill (and the link on the referral page), a refused form keeping what
was typed with every problem beside its field, a report, a duplicate, the county CDC's
return, the doctor's correction and the approval, a deletion, and access.

The pages use the real clock, so the cards here are diagnosed within the last hours."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from tests.referrals.conftest import make_ward
from tests.referrals.test_flow import up_form
from tests.security.test_web import _csrf

from healthgrid.referrals import service as referrals
from healthgrid.surveillance import reporting
from healthgrid.surveillance.card_queries import CST

from .test_reporting import PASSWORD, adult, make_world

HTML = {"accept": "text/html"}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def login(client, username: str) -> None:
    client.cookies.clear()
    form = client.get("/login", headers=HTML)
    answer = client.post("/login", headers=HTML, follow_redirects=False,
                         data={"username": username, "password": PASSWORD, "csrf_token": _csrf(form.text)})
    assert answer.status_code == 303, answer.text


def recent(w, **changes):
    """A card diagnosed this hour (China time), onset two days before."""
    at = datetime.now(CST).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return adult(w, diagnosed_at=at, onset_date=at.date() - timedelta(days=2), **changes)


@pytest.fixture
def w(session):
    world = make_world(session, tag="w")
    session.commit()
    return world


def form_data(w, csrf: str, **changes) -> dict:
    at = datetime.now(CST).replace(minute=0, second=0, microsecond=0)
    data = {"csrf_token": csrf, "action": "submit", "key": "web-key-1", "org": str(w.region.county_hospital.id),
            "patient_name": "王建国", "id_type": "resident_id", "id_number": w.rid, "id_holder": "self", "sex": "1",
            "birth_date": "1985-03-12", "work_unit": "永宁县机械厂", "phone": "13800138000", "belongs_to": "1",
            "current_address": "清河镇桃源村1号", "current_address_code": w.region.village.code,
            "population_group": "worker", "case_class": "clinical",
            "onset_date": (at.date() - timedelta(days=2)).isoformat(), "diagnosed_day": at.date().isoformat(),
            "diagnosed_hour": str(at.hour), "disease": "0400", "subtype": "0401", "doctor": "张晓明",
            "fill_date": at.date().isoformat()}
    data.update(changes)
    return data


def test_the_nav_and_the_lists_in_chinese_and_english(secure_client, session, w):
    card = reporting.report_card(session, w.doctor, recent(w), report_org_id=w.region.county_hospital.id)
    session.commit()
    login(secure_client, w.doctor.username)
    home = secure_client.get("/", headers=HTML)
    nav = re.search(r'<nav class="site-nav".*?</nav>', home.text, re.S).group(0)
    assert 'href="/surveillance/cards"' in nav and "传染病报告" in nav
    page = secure_client.get("/surveillance/cards", headers=HTML)
    assert page.status_code == 200 and 'data-tab="all"' in page.text  # a facility's default tab
    assert f'data-card-id="{card.id}"' in page.text and card.card_number in page.text and "待审核" in page.text
    assert all(label in page.text for label in ("待审核", "审核超时", "迟报", "已退回", "全部"))
    english = secure_client.get("/surveillance/cards?lang=en&tab=queue", headers=HTML)
    assert "Notifiable-disease report cards" in english.text and "Awaiting review" in english.text
    assert f'data-card-id="{card.id}"' in english.text and "Bacillary dysentery" in text_of(english.text)
    late = secure_client.get("/surveillance/cards?tab=late&lang=zh", headers=HTML)
    assert f'data-card-id="{card.id}"' not in late.text and "没有符合条件的报告卡" in late.text
    other = secure_client.get("/surveillance/cards?disease=0200", headers=HTML)
    assert f'data-card-id="{card.id}"' not in other.text


def test_the_form_is_laid_out_like_the_national_card(secure_client, session, w):
    login(secure_client, w.doctor.username)
    page = secure_client.get("/surveillance/cards/new", headers=HTML)
    assert page.status_code == 200
    sections = re.findall(r'data-section="(\w+)"', page.text)
    assert sections == ["unit", "patient", "clinical", "report"] and "中华人民共和国传染病报告卡" in page.text
    assert "患者信息" in page.text and "病人属于" in page.text and "甲类传染病" in page.text
    english = secure_client.get("/surveillance/cards/new?lang=en", headers=HTML)
    assert "Patient" in english.text and "Case classification" in english.text and "Class A" in english.text
    # Choosing HFMD and refreshing brings its supplementary card.
    csrf = _csrf(page.text)
    refreshed = secure_client.post("/surveillance/cards/new?lang=zh", headers=HTML,
                                   data=form_data(w, csrf, action="refresh", disease="4000", subtype=""))
    assert refreshed.status_code == 200, refreshed.text
    assert 'data-supplement="hfmd"' in refreshed.text and "手足口病附卡" in refreshed.text
    assert 'value="王建国"' in refreshed.text
    aids = secure_client.post("/surveillance/cards/new?lang=zh", headers=HTML, data=form_data(
        w, csrf, disease="0600", subtype="0601", case_class="confirmed", s_contact_history=["msm", "unknown"],
        s_route="homosexual"))
    assert aids.status_code == 422 and 'data-supplement="aids"' in aids.text and "艾滋病性病附卡" in aids.text
    assert 'value="msm" checked' in aids.text and '<option value="homosexual" selected>' in aids.text
    listed = {field for field in re.findall(r'<li data-problem="[\w-]+" data-field="([\w.]+)"', aids.text)}
    assert {"ethnicity", "household_address", "supplementary.std_history", "supplementary.sample_source"} <= listed
    assert "supplementary.route" not in listed and "supplementary.contact_history" not in listed


def test_one_click_from_a_diagnosis_prefills_the_card(secure_client, session, w):
    login(secure_client, w.doctor.username)
    page = secure_client.get(f"/surveillance/cards/new?patient_id={w.patient.id}&icd10=A03.900&source=referral:5",
                             headers=HTML)
    assert page.status_code == 200 and 'data-prefilled="1"' in page.text
    assert 'value="王建国"' in page.text and f'value="{w.rid}"' in page.text and 'value="1985-03-12"' in page.text
    assert '<option value="0400" selected>' in page.text and '<option value="0401" selected>' in page.text
    assert 'name="source" value="referral:5"' in page.text and 'name="icd10" value="A03.900"' in page.text
    refused = secure_client.get(f"/surveillance/cards/new?patient_id={w.patient.id}&icd10=I10", headers=HTML)
    assert refused.status_code == 422 and 'data-error-code="SURV-308"' in refused.text


def test_a_refused_form_keeps_what_was_typed_and_lists_each_problem_beside_its_field(secure_client, session, w):
    login(secure_client, w.doctor.username)
    csrf = _csrf(secure_client.get("/surveillance/cards/new", headers=HTML).text)
    refused = secure_client.post("/surveillance/cards/new", headers=HTML, data=form_data(
        w, csrf, birth_date="1985-13-01", phone="138-abc", case_class="", remarks="备注保留"))
    assert refused.status_code == 422
    listed = {field: code for code, field in re.findall(r'<li data-problem="([\w-]+)" data-field="([\w.]+)"',
                                                       refused.text)}
    assert listed == {"birth_date": "SURV-305", "phone": "SURV-218", "case_class": "SURV-227"}
    for field in ("birth_date", "phone", "case_class"):
        assert re.search(rf'data-field="{field}">.*?data-problem="SURV-\d+" data-field="{field}"', refused.text, re.S)
    assert 'value="1985-13-01"' in refused.text and 'value="备注保留"' in refused.text
    assert 'value="王建国"' in refused.text
    assert reporting.search_cards(session, w.doctor, reporting.CardQuery()) == []


def test_a_complete_form_reports_the_card_and_a_duplicate_offers_the_earlier_one(secure_client, session, w):
    login(secure_client, w.doctor.username)
    csrf = _csrf(secure_client.get("/surveillance/cards/new", headers=HTML).text)
    sent = secure_client.post("/surveillance/cards/new", headers=HTML, follow_redirects=False,
                              data=form_data(w, csrf, source="referral:5", icd10="A03.900"))
    assert sent.status_code == 303, sent.text
    page = secure_client.get(sent.headers["location"], headers=HTML)
    card = reporting.search_cards(session, w.doctor, reporting.CardQuery())[0]
    assert card.card_number in page.text and "已网络直报" in page.text and 'data-status="reported"' in page.text
    assert (card.source_kind, card.icd10) == ("referral", "A03.900")
    again = secure_client.post("/surveillance/cards/new", headers=HTML, data=form_data(w, csrf, key="web-key-2"))
    assert again.status_code == 409 and f'data-duplicate-of="{card.id}"' in again.text
    assert 'name="new_episode"' in again.text and 'value="王建国"' in again.text
    episode = secure_client.post("/surveillance/cards/new", headers=HTML, follow_redirects=False,
                                 data=form_data(w, csrf, key="web-key-3", new_episode="1"))
    assert episode.status_code == 303


def test_the_cdc_returns_the_doctor_corrects_and_the_cdc_approves(secure_client, session, w):
    card = reporting.report_card(session, w.doctor, recent(w), report_org_id=w.region.county_hospital.id)
    session.commit()
    login(secure_client, w.cdc.username)
    queue = secure_client.get("/surveillance/cards", headers=HTML)
    assert 'data-tab="queue"' in queue.text and f'data-card-id="{card.id}"' in queue.text
    page = secure_client.get(f"/surveillance/cards/{card.id}", headers=HTML)
    assert 'data-action="review"' in page.text
    sent = secure_client.post(f"/surveillance/cards/{card.id}/review", headers=HTML, follow_redirects=False,
                              data={"csrf_token": _csrf(page.text), "version": "1", "decision": "return",
                                    "note": "现住址请写到门牌号"})
    assert sent.status_code == 303
    assert "已退回报告单位订正" in secure_client.get(sent.headers["location"], headers=HTML).text
    login(secure_client, w.doctor.username)
    form = secure_client.get(f"/surveillance/cards/{card.id}/correct", headers=HTML)
    assert form.status_code == 200 and 'data-section="correction"' in form.text
    assert 'value="清河镇桃源村1号"' in form.text
    data = {**form_data(w, _csrf(form.text), current_address="清河镇桃源村1组3号", version="2"), "reason": ""}
    refused = secure_client.post(f"/surveillance/cards/{card.id}/correct", headers=HTML, data=data)
    assert refused.status_code == 422 and 'data-field="correction_reason"' in refused.text
    done = secure_client.post(f"/surveillance/cards/{card.id}/correct", headers=HTML, follow_redirects=False,
                              data={**data, "reason": "按审核意见补充门牌号"})
    assert done.status_code == 303, done.text
    after = reporting.get_card(session, w.doctor, card.id)
    assert (after.status, after.card.current_address, after.events[-1].detail["fields"]) == (
        "reported", "清河镇桃源村1组3号", ["current_address"])
    login(secure_client, w.cdc.username)
    page = secure_client.get(f"/surveillance/cards/{card.id}?lang=en", headers=HTML)
    assert "Corrected: Current address" in text_of(page.text)
    approved = secure_client.post(f"/surveillance/cards/{card.id}/review", headers=HTML, follow_redirects=False,
                                  data={"csrf_token": _csrf(page.text), "version": str(after.version),
                                        "decision": "approve"})
    assert reporting.get_card(session, w.cdc, card.id).status == "reviewed" and approved.status_code == 303


def test_a_deletion_from_the_page_and_refusals_come_back_as_notices(secure_client, session, w):
    card = reporting.report_card(session, w.doctor, recent(w), report_org_id=w.region.county_hospital.id)
    session.commit()
    login(secure_client, w.doctor.username)
    page = secure_client.get(f"/surveillance/cards/{card.id}", headers=HTML)
    assert 'data-action="delete"' in page.text and 'data-action="review"' not in page.text
    csrf = _csrf(page.text)
    refused = secure_client.post(f"/surveillance/cards/{card.id}/review", headers=HTML,
                                 data={"csrf_token": csrf, "decision": "approve"})
    assert refused.status_code == 200 and 'data-error-code="SEC-102"' in refused.text
    empty = secure_client.post(f"/surveillance/cards/{card.id}/delete", headers=HTML,
                               data={"csrf_token": csrf, "delete_type": "duplicate", "reason": ""})
    assert 'data-error-code="SURV-200"' in empty.text
    gone = secure_client.post(f"/surveillance/cards/{card.id}/delete", headers=HTML,
                              data={"csrf_token": csrf, "delete_type": "duplicate", "reason": "重复报告"})
    assert "已删除" in gone.text and 'data-status="deleted"' in gone.text and 'data-action="delete"' not in gone.text
    login(secure_client, w.doctor2.username)
    assert secure_client.get(f"/surveillance/cards/{card.id}", headers=HTML).status_code == 403


def test_the_referral_page_links_a_notifiable_diagnosis_to_its_report_card(secure_client, session):
    ward = make_ward(session, prefix="93")
    sent = referrals.create_referral(session, ward.village_doctor, up_form(ward, diagnoses=[
        {"code": "I10", "name": "原发性高血压"}, {"code": "A09.900", "name": "感染性腹泻"}]),
        now=datetime.now(UTC))
    session.commit()
    client = secure_client
    client.cookies.clear()
    form = client.get("/login", headers=HTML)
    client.post("/login", headers=HTML, data={"username": ward.hospital_doctor.username, "password": PASSWORD,
                                              "csrf_token": _csrf(form.text)})
    page = client.get(f"/referrals/{sent.id}", headers=HTML)
    assert page.status_code == 200 and 'data-case-reports="1"' in page.text
    link = f'/surveillance/cards/new?patient_id={ward.patient.id}&amp;icd10=A09.900&amp;source=referral%3A{sent.id}'
    assert link in page.text and 'data-one-click="I10"' not in page.text and "其它感染性腹泻病" in page.text
