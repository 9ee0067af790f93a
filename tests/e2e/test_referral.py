"""A real browser on the live app (generated tiny region) and two-way referral, up and back:
a village doctor finds the patient, fills the referral form, checks the criteria, picks one
of the hospital department's reserved places and submits; the hospital doctor (the demo
clinician) accepts it (the appointment shows), records the arrival, the start and the end of
care and fills the back-referral form (回转单); the village doctor finds the patient in the
follow-up list, records the follow-up and closes the referral; the print view (双向转诊单)
opens. Both languages; screenshots (``referral-*.png``) go to /tmp/hg-shots for a human to
look at.

The hospital's clinic with reserved places, the village doctor's account and the patient are
made here through the services: the clinic at the demo clinician's hospital (the lead of its
county medical community), opened from today's date; the village doctor at an L0 member of
that community."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import SESSION_INFO
from tests.e2e.test_region_browser import SHOTS_DIR, _shot, browser, log_in, page  # noqa: F401 (fixtures)
from tests.factories import resident_id

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.patients import service as patients
from healthgrid.registry import queries as registry_queries
from healthgrid.registry import service as registry
from healthgrid.scheduling import schedules
from healthgrid.security import service as security
from healthgrid.security.domain import Actor
from healthgrid.security.synth import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

SYS = Actor.system_actor("e2e")
ZONE = ZoneInfo("Asia/Shanghai")
VILLAGE_USER, VILLAGE_PASSWORD = "e2e-village-doctor", "Village-pass-2026"
PATIENT = "韩秀梅"


@dataclass(frozen=True)
class Scene:
    hospital_id: int
    hospital_name: str
    department_id: int
    village_id: int
    village_name: str
    patient_id: int


def _village_member(s, hospital_id: int):
    """A village clinic or community station of the hospital's county medical community."""
    alliances = sorted(registry_queries.organization_placement(s, hospital_id)[1])
    for alliance_id in alliances:
        found = registry_queries.search_organizations(s, registry_queries.OrgFilter(
            alliance_id=alliance_id, levels=["L0"], active=True), limit=1).items
        if found:
            return found[0]
    raise AssertionError("the demo hospital's alliances have no L0 member")


def _clinic(s, org_id: int) -> int:
    """The hospital's internal-medicine clinic with half its places reserved for referrals."""
    found = [d for d in registry_queries.organization_detail(s, org_id).departments if d.code == "03"]
    dept = found[0] if found else registry.add_department(s, SYS, org_id=org_id, code="03")
    schedules.create_schedule(s, SYS, schedules.ScheduleIn(
        org_id=org_id, name="内科 转诊 E2E 普通门诊", fee_class="general", department_id=dept.id,
        reserve_ratio=0.5, open_days_ahead=7,
        templates=[schedules.TemplateIn(weekday=w, part=p, start=a, end=b, slot_minutes=30)
                   for w in range(7) for p, a, b in (("am", "08:00", "11:30"), ("pm", "14:00", "16:00"))]),
        today=datetime.now(ZONE).date())
    return dept.id


@pytest.fixture(scope="module")
def scene(region_url) -> Scene:
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            hospital = registry_queries.organization_by_id(s, security.user_by_name(s, "demo-clinician").org_id)
            department_id = _clinic(s, hospital.id)
            village = _village_member(s, hospital.id)
            doctor = registry.create_practitioner(s, SYS, licence_no="120198000000777", name="马村医", sex="M",
                                                  title="village_doctor", specialty_code="50")
            registry.add_practice_site(s, SYS, practitioner_id=doctor.id, org_id=village.id, is_primary=True)
            security.create_user(s, SYS, username=VILLAGE_USER, display_name="马村医", password=VILLAGE_PASSWORD,
                                 grants=[security.parse_grant("clinician", "organization", village.id)],
                                 org_id=village.id, practitioner_id=doctor.id)
            born = date(1951, 2, 3)
            patient = patients.register_patient(s, SYS, org_id=village.id, data=patients.PatientIn(
                name=PATIENT, sex="F", birth_date=born, resident_id=resident_id(born, seq=778, county="980102"),
                phone="13900007788")).patient
            s.commit()
            return Scene(hospital.id, hospital.name, department_id, village.id, village.name, patient.id)
    finally:
        eng.dispose()


def _log_out(pg) -> None:
    pg.locator(".user-box__button").click()
    assert "/login" in pg.url


def _fill_form(pg) -> None:
    pg.fill('input[name="diag_code"] >> nth=0', "I10")
    pg.fill('input[name="diag_name"] >> nth=0', "原发性高血压")
    pg.fill('input[name="diag_code"] >> nth=1', "E11.900")
    pg.fill('input[name="diag_name"] >> nth=1', "2型糖尿病")
    pg.fill("#f-reason_text", "连续两次随访血压控制不满意，需调整治疗方案")
    pg.fill("#f-past_history", "高血压10年，2型糖尿病5年")
    pg.fill("#f-treatment", "氨氯地平5mg qd，二甲双胍0.5g tid")
    for name, value in (("sbp", "172"), ("dbp", "104"), ("fpg", "8.6"), ("heart_rate", "88"),
                        ("uncontrolled_visits", "2")):
        pg.fill(f"#f-{name}", value)
    pg.select_option("#f-ins", "resident")
    pg.fill("#f-region", "980102")


def _village_doctor_sends(pg, live_server: str, scene: Scene, tmp_path) -> tuple[str, str]:
    """Returns the referral page's path and the place picked ("YYYY-MM-DD HH:MM")."""
    log_in(pg, live_server, username=VILLAGE_USER, password=VILLAGE_PASSWORD)
    pg.locator(".site-nav a", has_text="双向转诊").click()
    assert pg.locator("h1").inner_text() == "双向转诊"
    pg.get_by_role("link", name="+ 发起转诊").click()
    pg.fill("#f-name", PATIENT)
    pg.get_by_role("button", name="查找患者").click()
    pg.locator(f'a[data-patient-id="{scene.patient_id}"]').click()
    assert PATIENT in pg.locator(".patient-card").inner_text()
    # Choosing the hospital and the department refreshes the form (the page's script).
    pg.select_option("#f-to-org", str(scene.hospital_id))
    pg.wait_for_selector(f'#f-dept option[value="{scene.department_id}"]', state="attached")
    pg.select_option("#f-dept", str(scene.department_id))
    pg.wait_for_selector(".places .place[data-slot-id]")
    pg.fill("#f-present_illness", "头晕、乏力两周，家测血压170/105 mmHg左右")
    pg.get_by_role("button", name="提交转诊").click()  # no diagnosis yet: refused, what was typed kept
    assert pg.locator('.alert[data-error-code="REF-005"]').get_attribute("data-error-field") == "diagnoses"
    assert pg.locator("#f-present_illness").input_value() == "头晕、乏力两周，家测血压170/105 mmHg左右"
    assert pg.locator("#f-dept").input_value() == str(scene.department_id)
    _shot(pg, tmp_path, "referral-0-refused")
    _fill_form(pg)
    pg.get_by_role("button", name="检查转诊标准").click()
    assert pg.locator('.finding[data-rule="REF-C12"]').count() == 1
    assert pg.locator("#f-sbp").input_value() == "172"
    day = pg.locator(".places .place-day").nth(1)  # tomorrow's (or the next day's) first place
    place = day.locator(".place[data-slot-id]").first
    picked = f'{day.get_attribute("data-day")} {place.locator(".place__time").inner_text()}'
    place.click()
    _shot(pg, tmp_path, "referral-1-form")
    pg.get_by_role("button", name="提交转诊").click()
    assert "已提交" in pg.locator(".flash").inner_text()
    assert pg.locator("main").get_attribute("data-status") == "submitted"
    assert picked in pg.locator(".status-card").inner_text()  # 申请的号源
    _shot(pg, tmp_path, "referral-2-submitted")
    path = "/referrals/" + pg.locator("main").get_attribute("data-referral-id")
    _log_out(pg)
    return path, picked


def _hospital_receives_and_refers_back(pg, live_server: str, path: str, picked: str, tmp_path) -> None:
    log_in(pg, live_server, username="demo-clinician", password=DEMO_PASSWORD)
    pg.goto(live_server + "/referrals?tab=in")
    row = pg.locator(f'tr[data-referral-id="{path.rsplit("/", 1)[1]}"]')
    assert PATIENT in row.inner_text() and "已提交" in row.inner_text()
    _shot(pg, tmp_path, "referral-3-inbox")
    row.locator("a").first.click()
    assert pg.locator('.actions-card .place input[type="radio"]:checked').count() == 1
    _shot(pg, tmp_path, "referral-4-to-accept")
    pg.get_by_role("button", name="接收转诊").click()
    assert "已接收转诊单" in pg.locator(".flash").inner_text()
    assert pg.locator("main").get_attribute("data-status") == "scheduled"
    assert "预约就诊" in pg.locator(".appointment-box").inner_text()
    assert picked in pg.locator(".appointment-box").inner_text()  # the place the village doctor picked
    _shot(pg, tmp_path, "referral-5-scheduled")
    for button, status in (("患者已到诊", "arrived"), ("开始诊治", "in_care"), ("诊治完成", "completed")):
        pg.get_by_role("button", name=button).click()
        assert pg.locator("main").get_attribute("data-status") == status
    pg.fill("#b-diagnosis", "高血压2级（高危）；2型糖尿病")
    pg.fill("#b-results", "心电图：左室高电压；糖化血红蛋白 7.8%；肌酐 88 μmol/L")
    pg.fill("#b-treatment", "调整为氨氯地平5mg qd + 缬沙坦80mg qd，血压降至136/84 mmHg")
    pg.fill("#b-plan", "氨氯地平5mg qd + 缬沙坦80mg qd；二甲双胍0.5g tid；每2周测血压")
    pg.fill("#b-rehab", "低盐低脂饮食，规律运动，戒烟限酒")
    pg.fill("#b-inpatient", "ZY2026-0420")
    pg.check('input[name="condition_stable"]')
    pg.check('input[name="diagnosis_confirmed"]')
    _shot(pg, tmp_path, "referral-6-back-form")
    pg.get_by_role("button", name="提交回转单").click()
    assert "回转单已提交" in pg.locator(".flash").inner_text()
    assert pg.locator("main").get_attribute("data-status") == "back_referred"
    _shot(pg, tmp_path, "referral-7-back-referred")
    _log_out(pg)


def _village_doctor_follows_up(pg, live_server: str, path: str, tmp_path) -> None:
    log_in(pg, live_server, username=VILLAGE_USER, password=VILLAGE_PASSWORD)
    pg.goto(live_server + "/referrals")
    pg.locator('.ref-tabs a[data-tab="followup"]').click()
    row = pg.locator(f'tr[data-referral-id="{path.rsplit("/", 1)[1]}"]')
    assert PATIENT in row.inner_text() and "已回转" in row.inner_text()
    _shot(pg, tmp_path, "referral-8-followups")
    row.locator("a").first.click()
    pg.fill("#a-followup", "血压132/82 mmHg，按回转方案服药，无不适")
    pg.get_by_role("button", name="记录随访").click()
    assert pg.locator("main").get_attribute("data-status") == "followed_up"
    pg.get_by_role("button", name="结案").click()
    assert pg.locator("main").get_attribute("data-status") == "closed"
    events = pg.locator(".ref-event").count()
    assert events == 11, events
    _shot(pg, tmp_path, "referral-9-closed")
    pg.goto(live_server + path + "?lang=en")
    assert "Closed" in pg.locator(".page-head__meta").inner_text()
    _shot(pg, tmp_path, "referral-9-closed-en")
    pg.goto(live_server + "/referrals?tab=out")
    assert pg.locator('.ref-tabs a[aria-current="page"]').inner_text() == "Outgoing"
    assert "Closed" in pg.locator(f'tr[data-referral-id="{path.rsplit("/", 1)[1]}"]').inner_text()
    _shot(pg, tmp_path, "referral-9-outbox-en")


def _print_view(pg, live_server: str, path: str, scene: Scene, tmp_path) -> None:
    pg.goto(live_server + path + "?lang=zh")
    pg.get_by_role("link", name="打印转诊单").click()
    text = pg.locator("main").inner_text()
    assert "双向转诊单（存根）" in text and "双向转诊（转出）单" in text and "双向转诊（回转）单" in text
    assert f"现有患者 {PATIENT} 女" in text and "因病情需要，需转入贵单位，请予以接诊" in text
    assert "因病情需要，现转回贵单位，请予以接诊" in text and scene.village_name in text
    _shot(pg, tmp_path, "referral-10-print")
    pg.emulate_media(media="print")
    assert pg.locator(".site-header").is_hidden() and pg.locator(".print-toolbar").is_hidden()
    _shot(pg, tmp_path, "referral-10-print-media")
    pdf = tmp_path / "referral-10-print.pdf"
    pg.pdf(path=str(pdf), format="A4")
    assert pdf.stat().st_size > 10_000
    shutil.copy(pdf, SHOTS_DIR / pdf.name)


def test_a_patient_goes_up_to_the_hospital_and_back(page, live_server, scene, tmp_path):  # noqa: F811
    path, picked = _village_doctor_sends(page, live_server, scene, tmp_path)
    _hospital_receives_and_refers_back(page, live_server, path, picked, tmp_path)
    _village_doctor_follows_up(page, live_server, path, tmp_path)
    _print_view(page, live_server, path, scene, tmp_path)
    assert page.requested_hosts == {"127.0.0.1"}
    # The refused form comes back as 422 (the browser logs that status); nothing else may fail.
    assert [e for e in page.console_errors if "status of 422" not in e] == []
    assert len(page.console_errors) == 1
