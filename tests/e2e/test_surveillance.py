"""A real browser on the live app (generated tiny region) and notifiable-disease surveillance,
from the diagnosis to the public warning:

1. the demo clinician opens a referral whose diagnosis is notifiable (细菌性痢疾 A03.900) and
   follows its "填报传染病报告卡" link to the card prefilled from the patient index; completes
   what the index cannot know (人群分类, 病例分类, 发病日期, 诊断时间), submits once with a case
   classification the disease does not allow (the coded problem shows beside its field, what
   was typed is kept), corrects it and reports: the card shows its number (CRB…), the report
   deadline (24 h after diagnosis for a class B disease) and its history;
2. the county CDC finds the card in 待审核, opens it and approves it (审核通过); the card page
   in English says so too;
3. the CDC opens the dashboard (map and epidemic curve drawn as SVG), the signal list, one
   open signal of its county, verifies it as a 疑似事件 with a note, starts the field
   investigation, drafts a 健康风险提示, edits and issues it, and opens its print view.

Made here through the services: a patient registered at a village clinic of the demo
hospital's county medical community, the referral sending them to the hospital (so the
hospital's doctor may read the record), a county CDC account if the demo one does not cover
the hospital, and the signal: the latest moving-percentile alarm (CIDARS) of the CDC's county,
computed from the region's own cases the way the detector computes it, raised through
``signals.raise_signal`` — a new signal, or the open unverified signal of its disease it joins.
Screenshots (``surveillance-*.png``) go to /tmp/hg-shots."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from tests.conftest import SESSION_INFO
from tests.e2e.test_referral import _village_member
from tests.e2e.test_region_browser import SHOTS_DIR, _shot, browser, log_in, page  # noqa: F401 (fixtures)
from tests.factories import resident_id

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.patients import service as patients
from healthgrid.referrals import service as referrals
from healthgrid.registry import queries as registry_queries
from healthgrid.security import access
from healthgrid.security import service as security
from healthgrid.security.domain import Actor, Perm
from healthgrid.security.synth import DEMO_PASSWORD
from healthgrid.surveillance import signals
from healthgrid.surveillance.catalogue import load_catalogue
from healthgrid.surveillance.detection_data import settings_of
from healthgrid.surveillance.detection_methods import Alarm, curve_for
from healthgrid.surveillance.detectors import cidars
from healthgrid.surveillance.models import Card, CardEvent, Signal, SignalEvent, Warning

pytestmark = pytest.mark.e2e

SYS = Actor.system_actor("e2e")
ZONE = ZoneInfo("Asia/Shanghai")
PATIENT, ICD10 = "赵国强", "A03.900"
CDC_USER, CDC_PASSWORD = "e2e-county-cdc", "County-cdc-2026"
VERIFY_NOTE = "电话核实：近一周病例集中在同一乡镇两所学校，时间、地点聚集，判定为疑似事件，需现场调查"
STATUS_ZH = {"generated": "已生成", "notified": "已发送"}
ADDED_ADVICE = "学校和托幼机构应加强晨午检，发现病例及时隔离并报告。"


@dataclass(frozen=True)
class Scene:
    hospital_id: int
    referral_id: int
    patient_id: int
    cdc_user: str
    cdc_password: str
    county_code: str  # the CDC's county (6 digits)
    signal_id: int
    signal_stream: str  # case:<disease>
    signal_status: str  # generated | notified


@contextmanager
def _session(region_url: str) -> Iterator[object]:
    """A fresh session on the region's database (what the live server wrote, committed)."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            yield s
    finally:
        eng.dispose()


def _county_cdc(s, hospital) -> tuple[str, str, int]:
    """The demo CDC epidemiologist if their county holds the hospital, else a CDC account of
    the hospital's county; and that county's division id."""
    division = registry_queries.divisions_by_ids(s, [hospital.division_id])[0]
    county_id = division.id if division.level == "county" else division.county_id
    demo = security.user_by_name(s, "demo-cdc_epidemiologist")
    actor = security.actor_for(s, demo, surface="web", client=None, mfa=False)
    if access.in_scope(s, actor, Perm.CASE_REVIEW, hospital.id):
        return demo.username, DEMO_PASSWORD, county_id
    security.create_user(s, SYS, username=CDC_USER, display_name="县疾控值班员", password=CDC_PASSWORD,
                         grants=[security.parse_grant("cdc_epidemiologist", "division", county_id)])
    return CDC_USER, CDC_PASSWORD, county_id


def _patient_and_referral(s, hospital) -> tuple[int, int]:
    """A farmer of a village of the hospital's county medical community, referred up to the
    hospital with bacillary dysentery (a notifiable diagnosis)."""
    village = _village_member(s, hospital.id)
    home = registry_queries.divisions_by_ids(s, [village.division_id])[0]
    born = date(1962, 5, 17)
    patient = patients.register_patient(s, SYS, org_id=village.id, data=patients.PatientIn(
        name=PATIENT, sex="M", birth_date=born, resident_id=resident_id(born, seq=771, county=home.code[:6]),
        phone="13900007711", division_id=home.id, address_line=f"{home.name}5组18号")).patient
    sent = referrals.create_referral(s, SYS, referrals.ReferralIn(
        patient_id=patient.id, from_org_id=village.id, to_org_id=hospital.id, urgency="urgent",
        diagnoses=[{"code": ICD10, "name": "细菌性痢疾"}, {"code": "E86.x00", "name": "脱水"}],
        reason_text="腹泻伴发热，中度脱水，需住院补液", present_illness="腹泻3天，每日10余次，黏液脓血便，发热38.9℃",
        past_history="无特殊", treatment="口服补液盐", insurance_type="resident"), now=datetime.now(UTC))
    return patient.id, sent.id


def _real_alarms(s, county_code: str) -> list[Alarm]:
    """The moving-percentile alarms (CIDARS) of the county in the 56 days up to yesterday,
    computed from the region's cases as the detector computes them (7-day count above the
    disease's P_x of the same weeks of past years): the latest day first, then the largest
    excess."""
    cat, cfg = load_catalogue(), settings_of(s)
    day = datetime.now(ZONE).date() - timedelta(days=1)
    found = []
    for disease in cat.valid_on(day):
        px = cat.mpm_percentile(disease.code, day)
        if px is None:  # fixed-threshold diseases signal each case instead
            continue
        curve = curve_for(s, stream=f"case:{disease.code}", county_code=county_code, method="mpm", detected_on=day,
                          detail={"percentile": px}, cfg=cfg)
        for on, observed, threshold in zip(curve.days, curve.statistic, curve.threshold, strict=True):
            if observed is not None and threshold is not None and observed > threshold:
                found.append((on, observed - threshold, Alarm(
                    f"case:{disease.code}", disease.code, county_code, "mpm", on, observed, threshold,
                    {"percentile": px, "window_days": cidars.WINDOW_DAYS})))
    return [alarm for _on, _excess, alarm in sorted(found, key=lambda f: (f[0], f[1]), reverse=True)]


def _open_signal(s, county_code: str) -> tuple[int, str, str]:
    """An unverified signal of the county: the latest real alarm raised through the service —
    a new signal, or (the detector's rule) the open signal of its stream it joins.
    Returns (id, stream, status)."""
    for alarm in _real_alarms(s, county_code):
        out = signals.raise_signal(s, alarm)
        row = s.get(Signal, out.signal_id) if out.signal_id is not None else None
        if row is not None and row.status in ("generated", "notified"):
            return row.id, row.stream, row.status
    raise AssertionError(f"no unverified moving-percentile signal could be raised in county {county_code}")


@pytest.fixture(scope="module")
def scene(region_url) -> Scene:
    with _session(region_url) as s:
        hospital = registry_queries.organization_by_id(s, security.user_by_name(s, "demo-clinician").org_id)
        cdc_user, cdc_password, county_id = _county_cdc(s, hospital)
        county_code = registry_queries.divisions_by_ids(s, [county_id])[0].code[:6]
        patient_id, referral_id = _patient_and_referral(s, hospital)
        signal_id, stream, status = _open_signal(s, county_code)
        s.commit()
        return Scene(hospital.id, referral_id, patient_id, cdc_user, cdc_password, county_code, signal_id, stream,
                     status)


def _log_out(pg) -> None:
    pg.locator(".user-box__button").click()
    assert "/login" in pg.url


def _fact(pg, scope: str, label: str) -> str:
    """The value of a labelled fact (ui.facts) inside ``scope``."""
    return pg.locator(f"{scope} .facts__row", has=pg.locator("dt", has_text=re.compile(f"^{label}$"))) \
        .locator("dd").inner_text()


# -- 1. the clinician reports -------------------------------------------------------------------------

def _open_prefilled_card(pg, live_server: str, scene: Scene, tmp_path) -> None:
    log_in(pg, live_server, username="demo-clinician", password=DEMO_PASSWORD)
    pg.goto(f"{live_server}/referrals/{scene.referral_id}")
    box = pg.locator(".case-report-card")
    assert box.get_attribute("data-case-reports") == "1"  # 脱水 (E86) is not notifiable
    assert "痢疾" in box.inner_text()
    _shot(pg, tmp_path, "surveillance-0-referral")
    box.locator(f'a[data-one-click="{ICD10}"]').click()
    assert pg.locator("main").get_attribute("data-mode") == "new"
    assert pg.locator('.alert[data-prefilled="1"]').count() == 1
    assert pg.locator("#f-org").input_value() == str(scene.hospital_id)
    assert pg.locator("#f-patient_name").input_value() == PATIENT
    assert pg.locator("#f-sex").input_value() == "1" and pg.locator("#f-birth_date").input_value() == "1962-05-17"
    assert len(pg.locator("#f-id_number").input_value()) == 18  # the doctor sees it unmasked
    assert pg.locator("#f-current_address_code").input_value() != ""
    assert pg.locator("#f-belongs_to").input_value() == "1"  # 本县区
    assert (pg.locator("#f-disease").input_value(), pg.locator("#f-subtype").input_value()) == ("0400", "0401")
    assert pg.locator("#f-doctor").input_value() != ""
    assert pg.locator('input[name="source"]').input_value() == f"referral:{scene.referral_id}"
    for blank in ("#f-population_group", "#f-case_class", "#f-onset_date", "#f-diagnosed_day"):
        assert pg.locator(blank).input_value() == "", blank
    _shot(pg, tmp_path, "surveillance-1-prefilled")


def _report_with_a_mistake_then_correctly(pg, tmp_path) -> datetime:
    """Returns the diagnosis time written on the card (China time, to the hour)."""
    now = datetime.now(ZONE)
    diagnosed = now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    onset = (now.date() - timedelta(days=3)).isoformat()
    pg.select_option("#f-population_group", "farmer")
    pg.select_option("#f-case_class", "carrier")  # 病原携带者: not a case class of dysentery
    pg.fill("#f-onset_date", onset)
    pg.fill("#f-diagnosed_day", diagnosed.date().isoformat())
    pg.select_option('select[name="diagnosed_hour"]', str(diagnosed.hour))
    pg.fill("#f-remarks", "转诊患者，已留取粪便标本")
    pg.get_by_role("button", name="网络直报").click()
    problems = pg.locator('.card-problems li[data-problem]')
    assert problems.count() == 1, problems.all_inner_texts()
    assert problems.first.get_attribute("data-problem") == "SURV-228"
    assert problems.first.get_attribute("data-field") == "case_class"
    beside = pg.locator('.field[data-field="case_class"] .field__error[data-problem="SURV-228"]')
    assert "痢疾的病例分类只能是" in beside.inner_text()
    assert pg.locator("#f-case_class").get_attribute("aria-invalid") == "true"
    # What was typed is kept.
    assert pg.locator("#f-case_class").input_value() == "carrier"
    assert pg.locator("#f-population_group").input_value() == "farmer"
    assert pg.locator("#f-onset_date").input_value() == onset
    assert pg.locator("#f-diagnosed_day").input_value() == diagnosed.date().isoformat()
    assert pg.locator('select[name="diagnosed_hour"]').input_value() == str(diagnosed.hour)
    assert pg.locator("#f-remarks").input_value() == "转诊患者，已留取粪便标本"
    assert pg.locator("#f-patient_name").input_value() == PATIENT
    _shot(pg, tmp_path, "surveillance-2-refused")
    pg.select_option("#f-case_class", "clinical")
    pg.get_by_role("button", name="网络直报").click()
    return diagnosed


def _the_reported_card(pg, diagnosed: datetime, tmp_path) -> tuple[int, str]:
    main = pg.locator("main")
    assert main.get_attribute("data-status") == "reported"
    number = pg.locator(".page-head .eyebrow code").inner_text()
    assert re.fullmatch(r"CRB\d{10}", number), number
    assert f"报告卡 {number} 已网络直报" in pg.locator(".flash").inner_text()
    assert pg.locator(".page-head__meta [data-status]").inner_text() == "待审核"
    assert PATIENT in pg.locator("h1").inner_text() and "痢疾" in pg.locator("h1").inner_text()
    assert _fact(pg, "section[aria-labelledby='s-clocks']", "诊断时间") == f"{diagnosed:%Y-%m-%d %H}:00"
    due = diagnosed + timedelta(hours=24)  # class B: network report within 24 h of diagnosis
    assert _fact(pg, "section[aria-labelledby='s-clocks']", "应报告时间") == f"{due:%Y-%m-%d %H}:00"
    assert "按时" in _fact(pg, "section[aria-labelledby='s-clocks']", "网络报告时间")
    assert "转诊单诊断" in _fact(pg, "section[aria-labelledby='s-report']", "来源")
    events = pg.locator(".card-events li")
    assert events.count() == 1 and events.first.get_attribute("data-event") == "reported"
    assert "初次报告" in events.first.inner_text() and "demo-clinician" in events.first.inner_text()
    assert pg.locator('form[data-action="review"]').count() == 0  # the reporter does not review
    _shot(pg, tmp_path, "surveillance-3-reported")
    return int(main.get_attribute("data-card-id")), number


# -- 2. the county CDC reviews ------------------------------------------------------------------------

def _cdc_reviews(pg, live_server: str, scene: Scene, card_id: int, number: str, tmp_path) -> None:
    log_in(pg, live_server, username=scene.cdc_user, password=scene.cdc_password)
    pg.locator(".site-nav a", has_text="传染病报告").click()
    assert pg.locator("main").get_attribute("data-tab") == "queue"  # the CDC starts at 待审核
    assert pg.locator('.card-tabs a[aria-current="page"]').inner_text() == "待审核"
    # Narrow the queue with the page's filters: dysentery, reported today.
    pg.select_option("#flt-disease", "0400")
    pg.fill("#flt-since", datetime.now(ZONE).date().isoformat())
    pg.get_by_role("button", name="筛选").click()
    row = pg.locator(f'tr[data-card-id="{card_id}"]')
    assert number in row.inner_text() and PATIENT in row.inner_text() and "待审核" in row.inner_text()
    _shot(pg, tmp_path, "surveillance-4-queue")
    row.locator("a").first.click()
    assert pg.locator("main").get_attribute("data-status") == "reported"
    pg.fill("#a-note", "信息完整，同意")
    _shot(pg, tmp_path, "surveillance-5-to-review")
    pg.get_by_role("button", name="审核通过").click()
    assert f"报告卡 {number} 已审核通过" in pg.locator(".flash").inner_text()
    assert pg.locator("main").get_attribute("data-status") == "reviewed"
    assert pg.locator(".page-head__meta [data-status]").inner_text() == "已审核"
    assert _fact(pg, "section[aria-labelledby='s-clocks']", "审核意见") == "信息完整，同意"
    assert [e.get_attribute("data-event") for e in pg.locator(".card-events li").all()] == ["reported", "reviewed"]
    assert "审核通过" in pg.locator('.card-events li[data-event="reviewed"]').inner_text()
    assert pg.locator('form[data-action="review"]').count() == 0
    _shot(pg, tmp_path, "surveillance-6-reviewed")
    pg.goto(f"{live_server}/surveillance/cards/{card_id}?lang=en")
    assert pg.locator("html").get_attribute("lang") == "en"
    assert pg.locator(".page-head__meta [data-status]").inner_text() == "Reviewed"
    assert "Review approved" in pg.locator('.card-events li[data-event="reviewed"]').inner_text()
    assert "Report due" in pg.locator("section[aria-labelledby='s-clocks']").inner_text()
    _shot(pg, tmp_path, "surveillance-6-reviewed-en")
    pg.goto(f"{live_server}/surveillance?lang=zh")


def _card_in_the_database(region_url: str, card_id: int, number: str, scene: Scene, diagnosed: datetime) -> None:
    with _session(region_url) as s:
        card = s.get(Card, card_id)
        assert (card.card_number, card.status, card.report_org_id) == (number, "reviewed", scene.hospital_id)
        assert (card.disease, card.subtype, card.case_class, card.population_group) == ("0400", "0401", "clinical",
                                                                                        "farmer")
        assert (card.patient_id, card.source_kind, card.source_ref) == (scene.patient_id, "referral",
                                                                         str(scene.referral_id))
        assert card.diagnosed_at == diagnosed.replace(tzinfo=ZONE).astimezone(UTC)
        assert card.report_due_at - card.diagnosed_at == timedelta(hours=24)
        assert card.reviewed_by == scene.cdc_user and card.review_note == "信息完整，同意"
        assert PATIENT.encode() not in (card.personal_enc or "").encode()  # personal fields are sealed
        # The refused first attempt wrote nothing: the patient has this one card.
        assert s.scalars(select(Card.id).where(Card.patient_id == scene.patient_id)).all() == [card_id]
        kinds = s.scalars(select(CardEvent.kind).where(CardEvent.card_id == card_id).order_by(CardEvent.id)).all()
        assert kinds == ["reported", "reviewed"]


# -- 3. the county CDC answers a signal ---------------------------------------------------------------

def _dashboard_and_list(pg, live_server: str, scene: Scene, tmp_path) -> None:
    assert pg.locator("html").get_attribute("lang") == "zh-CN"
    assert pg.locator('svg[data-figure="map"] path.cell').count() >= 1
    assert pg.locator('svg[data-figure="curve"]').is_visible()
    assert pg.locator('[data-section="kpis"] .kpi').count() >= 4
    _shot(pg, tmp_path, "surveillance-7-dashboard")
    pg.goto(f"{live_server}/surveillance/signals")
    assert pg.locator('.sig-tabs a[aria-current="page"]').inner_text() == "处置中"
    pg.select_option("#f-county", scene.county_code)
    pg.select_option("#f-stream", scene.signal_stream)
    pg.get_by_role("button", name="筛选").click()
    row = pg.locator(f'tr[data-signal-id="{scene.signal_id}"]')
    assert row.get_attribute("data-status") == scene.signal_status
    assert STATUS_ZH[scene.signal_status] in row.inner_text()
    assert "移动百分位数法" in row.inner_text()
    _shot(pg, tmp_path, "surveillance-8-signals")
    row.locator("a").first.click()


def _verify_and_investigate(pg, scene: Scene, tmp_path) -> None:
    main = pg.locator("main")
    assert main.get_attribute("data-status") == scene.signal_status
    assert "预警信号 #" in pg.locator("h1").inner_text()
    assert pg.locator('.sig-basis[data-method="mpm"]').inner_text().startswith("近7日报告病例")
    assert pg.locator("svg.sig-chart path[data-series='statistic']").count() == 1
    assert pg.locator("svg.sig-chart path[data-series='threshold']").count() == 1
    _shot(pg, tmp_path, "surveillance-9-signal")
    verify = pg.locator('form[data-action="verify"]')
    verify.locator('input[name="outcome"][value="suspected"]').check()
    verify.locator("textarea").fill(VERIFY_NOTE)
    verify.get_by_role("button", name="提交").click()
    assert "已记录初步核实结果" in pg.locator(".flash").inner_text()
    assert main.get_attribute("data-status") == "suspected"
    assert "疑似事件" in pg.locator(".page-head .lead").inner_text()
    line = pg.locator('.sig-log li[data-to="suspected"]')
    assert VERIFY_NOTE in line.inner_text() and f"{STATUS_ZH[scene.signal_status]} →" in line.inner_text()
    assert "疑似事件" in _fact(pg, ".sig-grid", "核实时间")
    assert "小时" in _fact(pg, ".sig-grid", "响应时长")
    investigate = pg.locator('form[data-action="investigate"]')
    investigate.locator("textarea").fill("派出2名流调人员赴学校开展现场调查")
    investigate.get_by_role("button", name="提交").click()
    assert "已开始现场调查" in pg.locator(".flash").inner_text()
    assert main.get_attribute("data-status") == "field_investigation"
    assert "现场调查" in pg.locator('.sig-log li[data-to="field_investigation"]').inner_text()
    assert _fact(pg, ".sig-grid", "现场调查开始") != "—"
    assert pg.locator('form[data-action="conclude"]').count() == 1  # the next step is offered
    _shot(pg, tmp_path, "surveillance-10-investigating")


def _warn_the_public(pg, tmp_path) -> str:
    """Drafts, edits and issues a 健康风险提示; returns its print view's path."""
    pg.select_option("#w-product", "risk_notice")
    pg.get_by_role("button", name="起草").click()
    assert "已起草预警产品" in pg.locator(".flash").inner_text()
    product = pg.locator('.sig-product[data-product="risk_notice"]')
    assert product.get_attribute("data-status") == "draft" and "草稿" in product.locator("header").inner_text()
    title = product.locator('input[name="title"]')
    assert title.input_value().endswith("健康风险提示")
    body = product.locator('textarea[name="body"]')
    assert "现场调查" in body.input_value() and "社会公众" in product.locator("header").inner_text()
    body.fill(body.input_value().replace("提醒广大群众：", "提醒广大群众：" + ADDED_ADVICE, 1))
    _shot(pg, tmp_path, "surveillance-11-draft")
    product.get_by_role("button", name="发布").click()
    assert "预警产品已发布" in pg.locator(".flash").inner_text()
    product = pg.locator('.sig-product[data-product="risk_notice"]')
    assert product.get_attribute("data-status") == "issued"
    assert "已发布" in product.locator(".sig-product__status").inner_text()
    assert ADDED_ADVICE in product.locator(".sig-product__body").inner_text()
    assert product.locator('textarea[name="body"]').count() == 0  # issued: fixed
    _shot(pg, tmp_path, "surveillance-12-issued")
    product.get_by_role("link", name="打印").click()
    return pg.url


def _print_view(pg, tmp_path) -> None:
    assert pg.locator("main").get_attribute("data-status") == "issued"
    doc = pg.locator("article.sig-document")
    assert doc.locator(".sig-document__kind").inner_text() == "健康风险提示"
    assert doc.locator("h1").inner_text().endswith("健康风险提示")
    assert "社会公众" in doc.locator(".sig-document__audience").inner_text()
    assert ADDED_ADVICE in doc.locator(".sig-document__body").inner_text()
    assert doc.locator("[data-draft]").count() == 0 and "发布时间" in doc.locator("footer").inner_text()
    _shot(pg, tmp_path, "surveillance-13-print")
    pg.emulate_media(media="print")
    assert pg.locator(".site-header").is_hidden() and pg.locator(".sig-print-tools").is_hidden()
    _shot(pg, tmp_path, "surveillance-13-print-media")
    pg.emulate_media(media="screen")


def _signal_in_the_database(region_url: str, scene: Scene) -> None:
    with _session(region_url) as s:
        row = s.get(Signal, scene.signal_id)
        assert (row.status, row.verification) == ("field_investigation", "suspected")
        assert row.verified_at is not None and row.investigation_at is not None and row.open_key is not None
        moves = s.execute(select(SignalEvent.from_status, SignalEvent.to_status).where(
            SignalEvent.signal_id == row.id, SignalEvent.to_status.is_not(None)).order_by(SignalEvent.id)).all()
        assert [tuple(m) for m in moves[-2:]] == [(scene.signal_status, "suspected"),
                                                  ("suspected", "field_investigation")]
        notes = s.scalars(select(SignalEvent.note).where(SignalEvent.signal_id == row.id)).all()
        assert VERIFY_NOTE in notes
        [w] = s.scalars(select(Warning).where(Warning.signal_id == row.id)).all()
        assert (w.product, w.status, w.issued_by, w.audience) == ("risk_notice", "issued", scene.cdc_user, "社会公众")
        assert ADDED_ADVICE in w.body and w.issued_at is not None


def test_a_case_is_reported_reviewed_and_a_signal_answered_with_a_warning(page, live_server, region_url, scene,  # noqa: F811
                                                                          tmp_path):
    _open_prefilled_card(page, live_server, scene, tmp_path)
    diagnosed = _report_with_a_mistake_then_correctly(page, tmp_path)
    card_id, number = _the_reported_card(page, diagnosed, tmp_path)
    _log_out(page)
    _cdc_reviews(page, live_server, scene, card_id, number, tmp_path)
    _card_in_the_database(region_url, card_id, number, scene, diagnosed)
    _dashboard_and_list(page, live_server, scene, tmp_path)
    _verify_and_investigate(page, scene, tmp_path)
    _warn_the_public(page, tmp_path)
    _print_view(page, tmp_path)
    _signal_in_the_database(region_url, scene)
    assert page.requested_hosts == {"127.0.0.1"}
    # The refused card comes back as 422 (the browser logs that status); nothing else may fail.
    assert [e for e in page.console_errors if "status of 422" not in e] == []
    assert len(page.console_errors) == 1
    assert SHOTS_DIR.joinpath("surveillance-13-print.png").exists()
