"""A real browser (Debian chromium through Playwright) logs in as the demo clinician and walks
the region browser on the live app serving the generated tiny region: home → division → … →
county → county hospital → its county medical community (县域医共体) → English. It checks
what the pages say, that nothing is fetched from any other host (hospital intranets are offline), and saves
screenshots for a human to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# Copies of the screenshots where a person (or the next agent) can look at them.
SHOTS_DIR = Path("/tmp/hg-shots")


def _unavailable(reason: str) -> None:
    if os.environ.get("HEALTHGRID_REQUIRE_E2E") == "1":
        pytest.fail(f"browser tests are required (HEALTHGRID_REQUIRE_E2E=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    pg.requested_hosts = set()
    pg.console_errors = []
    pg.on("request", lambda req: pg.requested_hosts.add(urlsplit(req.url).hostname))
    pg.on("console", lambda msg: msg.type == "error" and pg.console_errors.append(msg.text))
    yield pg
    context.close()


def _shot(pg, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS_DIR / path.name)
    return path


def log_in(pg, live_server: str, username: str = "demo-clinician", password: str = "HealthGrid#2026") -> None:
    """Pages need a user: log in through the form (the demo clinician has no second factor)."""
    pg.goto(live_server + "/login")
    pg.fill("#f-username", username)
    pg.fill("#f-password", password)
    pg.get_by_role("button", name="登录").click()
    assert pg.url == live_server + "/", pg.url


def _main_attr(pg, name: str) -> str | None:
    return pg.locator("main").get_attribute(name)


def _go_home(pg, live_server: str, tmp_path: Path) -> None:
    pg.goto(live_server + "/")
    assert pg.locator("html").get_attribute("lang") == "zh-CN"
    assert pg.locator("h1").inner_text() == "HealthGrid 区域卫生信息平台"
    assert "分级诊疗" in pg.locator(".hero .lead").inner_text()
    assert int(pg.locator('[data-stat="organizations"] .stat__value').inner_text().replace(",", "")) > 0
    assert pg.locator("#top-divisions + .link-grid a").count() >= 1
    _shot(pg, tmp_path, "home")


def _descend_to_a_county(pg) -> list[str]:
    """From the home page, click down the division tree until a county page; returns the
    names passed on the way."""
    first = pg.locator("#top-divisions + .link-grid a").first
    names = [first.inner_text().splitlines()[0].strip()]
    first.click()
    while _main_attr(pg, "data-division-level") != "county":
        assert pg.locator("h1").inner_text() == names[-1]
        # Prefer a county child when there is one; otherwise go one level down.
        children = pg.locator('.children a[data-level="county"]')
        if children.count() == 0:
            children = pg.locator(".children a")
        assert children.count() > 0, f"no way down from {names[-1]}"
        names.append(children.first.inner_text().splitlines()[0].strip())
        children.first.click()
    assert pg.locator("h1").inner_text() == names[-1]
    assert pg.locator(".page-head .eyebrow").inner_text() == "县区"
    crumbs = pg.locator(".breadcrumb li").all_inner_texts()
    assert crumbs[0] == "全区域" and crumbs[1:] == names
    return names


def _open_county_hospital(pg, tmp_path: Path) -> str:
    _shot(pg, tmp_path, "county")
    # Use the page's own filter form: county level, general hospitals.
    pg.select_option("#f-level", "L2")
    pg.select_option("#f-type", "general_hospital")
    pg.get_by_role("button", name="筛选").click()
    rows = pg.locator('table.org-table tbody tr[data-org-level="L2"][data-org-type="general_hospital"]')
    assert rows.count() >= 1
    assert pg.locator("table.org-table tbody tr").count() == rows.count()
    link = rows.first.locator("td a").first
    name = link.inner_text()
    link.click()
    assert pg.locator("h1").inner_text() == name
    assert _main_attr(pg, "data-org-level") == "L2"
    assert pg.locator(".page-head .eyebrow").inner_text() == "综合医院"
    assert pg.locator("#departments").inner_text() == "科室设置"
    assert pg.locator("ul.departments li").count() > 0
    assert pg.locator("table.staff tbody tr").count() > 0
    assert "主要执业机构" in pg.locator("table.staff").inner_text()
    _shot(pg, tmp_path, "facility")
    return name


def _open_its_county_community(pg, hospital: str) -> str:
    link = pg.locator('.memberships a[data-kind="county_community"]').first
    assert "县域医共体" in link.inner_text() and "牵头单位" in link.inner_text()
    alliance = link.inner_text().splitlines()[0].strip()
    link.click()
    assert pg.locator("h1").inner_text() == alliance
    assert pg.locator(".page-head .eyebrow").inner_text() == "县域医共体"
    lead = pg.locator('table.members tr[data-role="lead"]')
    assert lead.count() == 1 and lead.locator("td a").first.inner_text() == hospital
    assert "牵头单位" in lead.inner_text()
    assert pg.locator('table.members tr[data-role="member"]').count() >= 1
    return alliance


def _switch_to_english(pg, alliance: str, hospital: str, tmp_path: Path) -> None:
    pg.locator("a.lang-switch").click()
    assert pg.locator("html").get_attribute("lang") == "en"
    assert pg.locator("h1").inner_text() == alliance  # a name is data, not a label
    assert pg.locator(".page-head .eyebrow").inner_text() == "County medical community"
    assert pg.locator("#members").inner_text() == "Member facilities"
    assert "Lead" in pg.locator('table.members tr[data-role="lead"]').inner_text()
    assert pg.locator("a.lang-switch").inner_text() == "中文"
    _shot(pg, tmp_path, "alliance-en")
    # The choice is kept (cookie): the next page, reached by a plain link, is English too.
    pg.locator('table.members tr[data-role="lead"] td a').first.click()
    assert "lang=" not in pg.url
    assert pg.locator("h1").inner_text() == hospital
    assert pg.locator("#departments").inner_text() == "Departments"
    assert pg.locator("#staff").inner_text() == "Practitioners"
    assert pg.locator(".page-head .eyebrow").inner_text() == "General hospital"


def test_walk_from_home_to_a_county_medical_community_and_switch_to_english(page, live_server, tmp_path):
    log_in(page, live_server)
    _go_home(page, live_server, tmp_path)
    _descend_to_a_county(page)
    hospital = _open_county_hospital(page, tmp_path)
    alliance = _open_its_county_community(page, hospital)
    _switch_to_english(page, alliance, hospital, tmp_path)
    assert page.requested_hosts == {"127.0.0.1"}
    assert page.console_errors == []


def test_unknown_division_shows_the_error_page(page, live_server):
    log_in(page, live_server)
    response = page.goto(live_server + "/registry/divisions/999999")
    assert response.status == 404
    assert page.locator("code.error-code").inner_text() == "REG-001"
    assert page.locator("h1").inner_text() == "未找到"
    assert page.requested_hosts == {"127.0.0.1"}


def test_api_docs_render_offline_in_the_browser(page, live_server, tmp_path):
    """Swagger UI comes from a wheel and must be able to read FastAPI's OpenAPI 3.1 document
    (Swagger UI 4 cannot: it shows 'Unable to render this definition')."""
    page.goto(live_server + "/api/docs")
    page.locator(".opblock-summary-path", has_text="/api/registry/organizations").first.wait_for()
    assert page.get_by_text("Unable to render this definition").count() == 0
    assert page.requested_hosts == {"127.0.0.1"}
    _shot(page, tmp_path, "api-docs")
