"""A real browser on the live app (generated tiny region) and the master patient index: the
demo clinician finds a resident by name and birth date, opens the record, registers a new
one through the form and breaks the glass for a patient of another facility; the demo index
steward compares a doubtful pair side by side, merges it and undoes the merge. Both languages;
screenshots (``patients-*.png``) go to /tmp/hg-shots for a human to look at.

The residents and the open review are made here through the patient service, at the demo
clinician's hospital (inside the steward's county), so the test does not depend on what the
synthetic region holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from tests.conftest import SESSION_INFO
from tests.e2e.test_region_browser import _shot, browser, log_in, page  # noqa: F401 (fixtures)

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.patients import service as patients
from healthgrid.registry import queries as registry_queries
from healthgrid.security import service as security
from healthgrid.security.domain import Actor

pytestmark = pytest.mark.e2e

SYS = Actor.system_actor("e2e")
NAME, BORN = "欧阳明华", date(1972, 4, 9)


@dataclass(frozen=True)
class Residents:
    patient_id: int  # registered at the clinician's hospital, with a record number
    twin_id: int  # the same name and birth date, another phone: in review with patient_id
    review_id: int
    stranger_id: int  # registered at another facility only
    hospital: str
    village_code: str


@pytest.fixture(scope="module")
def residents(region_url) -> Residents:
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            org_id = security.user_by_name(s, "demo-clinician").org_id
            hospital = registry_queries.organization_by_id(s, org_id)
            village = registry_queries.search_divisions(s, level="village", limit=1).items[0]
            other = registry_queries.search_organizations(
                s, registry_queries.OrgFilter(types=["village_clinic"]), limit=50).items
            other_id = next(o.id for o in other if o.id != org_id)

            def register(org: int, name: str, phone: str, **kw):
                data = patients.PatientIn(name=name, sex="F", birth_date=BORN, phone=phone, **kw)
                return patients.register_patient(s, SYS, org_id=org, data=data)

            first = register(org_id, NAME, "13600001234", mrn="E2E-0001", division_id=village.id,
                             kin=[patients.KinIn("欧阳建", "spouse", "13600005678")])
            twin = register(org_id, NAME, "13600009876")
            assert twin.outcome == "review", twin.outcome
            stranger = register(other_id, "上官婉清", "13500002222")
            s.commit()
            return Residents(first.patient.id, twin.patient.id, twin.reviews[0], stranger.patient.id,
                             hospital.name, village.code)
    finally:
        eng.dispose()


def _no_errors_but(pg, *statuses: str) -> list[str]:
    """Console errors other than the refusals the test itself provokes (a 403 page)."""
    return [e for e in pg.console_errors if not any(s in e for s in statuses)]


def test_clinician_finds_a_resident_opens_the_record_and_registers_one(page, live_server, residents,  # noqa: F811
                                                                        tmp_path):
    log_in(page, live_server)
    page.locator(".site-nav a", has_text="患者主索引").click()
    assert page.locator("h1").inner_text() == "患者主索引"
    _shot(page, tmp_path, "patients-search-empty")
    page.fill("#f-name", NAME)
    page.fill("#f-birth_date", BORN.isoformat())
    page.get_by_role("button", name="搜索").click()
    rows = page.locator("table.patients tbody tr")
    assert rows.count() >= 2
    row = page.locator(f'tr[data-patient-id="{residents.patient_id}"]')
    assert NAME in row.inner_text() and "13600001234" in row.inner_text()
    _shot(page, tmp_path, "patients-search-results")
    page.goto(page.url + "&lang=en")
    assert page.locator("h1").inner_text() == "Patient index"
    _shot(page, tmp_path, "patients-search-results-en")
    page.goto(page.url.replace("lang=en", "lang=zh"))
    row.locator("a").first.click()
    assert page.locator("h1").inner_text().startswith(NAME)
    assert page.locator("main").get_attribute("data-patient-id") == str(residents.patient_id)
    assert "E2E-0001" in page.locator("table.identifiers").inner_text()
    assert residents.hospital in page.locator("table.identifiers").inner_text()
    assert "配偶" in page.locator("table.kin").inner_text()
    assert page.locator(".timeline__entry").count() >= 2
    _shot(page, tmp_path, "patients-record")
    page.locator("a.lang-switch").click()
    assert page.locator("#demographics").inner_text() == "Demographics"
    assert "Spouse" in page.locator("table.kin").inner_text()
    _shot(page, tmp_path, "patients-record-en")
    page.goto(live_server + "/patients?lang=zh")

    # a new resident through the form
    page.get_by_role("link", name="登记新患者").click()
    assert page.locator("h1").inner_text() == "登记患者"
    assert page.locator(".org-fixed").inner_text() == residents.hospital
    _shot(page, tmp_path, "patients-new")
    page.fill("#f-name", "司马光明")
    page.select_option("#f-sex", "M")
    page.fill("#f-birth_date", "1988-10-21")
    page.fill("#f-phone", "12345")
    page.get_by_role("button", name="登记").click()
    assert page.locator(".alert--error").get_attribute("data-error-code") == "PAT-005"
    assert page.locator("#e-phone").is_visible() and page.locator("#f-name").input_value() == "司马光明"
    _shot(page, tmp_path, "patients-new-error")
    page.fill("#f-phone", "13912340000")
    page.fill("#f-division_code", residents.village_code)
    page.fill("#f-mrn", "E2E-0002")
    page.fill("#f-kin_name", "司马芳")
    page.select_option("#f-kin_relationship", "parent")
    page.get_by_role("button", name="登记").click()
    assert page.locator("h1").inner_text().startswith("司马光明")
    assert "已为该居民建立新档案" in page.locator(".flash").inner_text()
    _shot(page, tmp_path, "patients-created")
    page.goto(live_server + "/patients/new?lang=en")
    _shot(page, tmp_path, "patients-new-en")
    assert page.requested_hosts == {"127.0.0.1"}
    assert _no_errors_but(page, "422") == []


def test_clinician_breaks_the_glass_for_a_patient_of_another_facility(page, live_server, residents,  # noqa: F811
                                                                       tmp_path):
    log_in(page, live_server)
    answer = page.goto(f"{live_server}/patients/{residents.stranger_id}")
    assert answer.status == 403
    assert page.locator("h1").inner_text() == "无权查看该档案"
    _shot(page, tmp_path, "patients-glass-form")
    page.goto(f"{live_server}/patients/{residents.stranger_id}?lang=en")
    assert page.locator("h1").inner_text() == "You may not read this record"
    _shot(page, tmp_path, "patients-glass-form-en")
    page.goto(f"{live_server}/patients/{residents.stranger_id}?lang=zh")
    page.fill("#f-reason", "患者昏迷送至急诊，需要查看既往病史和过敏史")
    page.get_by_role("button", name="紧急访问").click()
    assert page.locator("h1").inner_text().startswith("上官婉清")
    assert "紧急访问" in page.locator("[data-glass]").inner_text()
    _shot(page, tmp_path, "patients-glass-read")
    assert page.requested_hosts == {"127.0.0.1"}
    assert _no_errors_but(page, "403") == []


def test_steward_merges_a_reviewed_pair_and_undoes_it(page, live_server, residents, tmp_path):  # noqa: F811
    log_in(page, live_server, username="demo-mpi_steward")
    page.locator(".site-nav a", has_text="待审核匹配").click()
    assert page.locator("h1").inner_text() == "待审核匹配"
    row = page.locator(f'tr[data-review-id="{residents.review_id}"]')
    assert NAME in row.inner_text()
    _shot(page, tmp_path, "patients-reviews")
    page.goto(live_server + "/patients/reviews?lang=en")
    assert page.locator("h1").inner_text() == "Match review"
    _shot(page, tmp_path, "patients-reviews-en")
    page.goto(live_server + "/patients/reviews?lang=zh")
    row.locator("a").click()
    assert page.locator("h1").inner_text() == f"匹配审核 #{residents.review_id}"
    assert page.locator('tr[data-field="phone"]').get_attribute("data-verdict") == "disagree"
    assert page.locator('tr[data-field="birth_date"]').get_attribute("data-verdict") == "agree"
    assert page.locator(f'input[name="survivor_id"][value="{residents.patient_id}"]').is_checked()
    _shot(page, tmp_path, "patients-review")
    page.locator("a.lang-switch").click()
    assert "Newer record" in page.locator("table.compare thead").inner_text()
    _shot(page, tmp_path, "patients-review-en")
    page.locator("a.lang-switch").click()
    page.check('input[name="decision"][value="merge"]')
    page.fill("#f-note", "电话为家属号码，电话回访核实为同一人")
    page.get_by_role("button", name="提交决定").click()
    assert page.url.endswith("/patients/reviews")
    assert "两条记录已合并" in page.locator(".flash").inner_text()
    assert page.locator(f'tr[data-review-id="{residents.review_id}"]').count() == 0
    _shot(page, tmp_path, "patients-merged")
    page.locator(".flash a").click()
    assert page.locator("main").get_attribute("data-view") == "merge-history"
    merge = page.locator('tr[data-state="active"]').first
    _shot(page, tmp_path, "patients-history")
    merge.locator('input[name="reason"]').fill("身份证核实为两人")
    merge.get_by_role("button", name="撤销合并").click()
    assert "已撤销合并" in page.locator(".flash").inner_text()
    assert page.locator('tr[data-state="undone"]').count() >= 1
    _shot(page, tmp_path, "patients-unmerged")
    page.goto(page.url + "?lang=en")
    assert "Merge history" in page.locator("h1").inner_text()
    _shot(page, tmp_path, "patients-history-en")
    assert page.requested_hosts == {"127.0.0.1"}
    assert page.console_errors == []
