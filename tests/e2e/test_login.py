"""A real browser logs in on the live app (generated tiny region): the demo clinician with
a password, the demo auditor with a password and a TOTP code, then the auditor's trail.
Screenshots go to /tmp/hg-shots for a human to look at."""

from __future__ import annotations

import pytest
from tests.conftest import SESSION_INFO
from tests.e2e.test_region_browser import _shot, browser, page  # noqa: F401 (fixtures)

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.security import service

pytestmark = pytest.mark.e2e

DEMO_PASSWORD = "HealthGrid#2026"


def totp_code(region_url: str, username: str) -> str:
    """The demo user's current code, read from its (encrypted) secret like the CLI does."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            return service.totp_now(s, service.user_by_name(s, username).id)
    finally:
        eng.dispose()


def log_in(pg, live_server: str, username: str, *, next_path: str = "/") -> None:
    pg.goto(live_server + ("/login" if next_path == "/" else next_path))
    assert "/login" in pg.url
    pg.fill("#f-username", username)
    pg.fill("#f-password", DEMO_PASSWORD)
    pg.get_by_role("button", name="登录").click()


def test_clinician_logs_in_and_sees_the_home_page_in_chinese(page, live_server, tmp_path):  # noqa: F811
    page.goto(live_server + "/")
    assert page.url.endswith("/login")
    assert page.locator("h1").inner_text() == "登录"
    _shot(page, tmp_path, "login")
    page.fill("#f-username", "demo-clinician")
    page.fill("#f-password", "wrong-password")
    page.get_by_role("button", name="登录").click()
    assert page.locator(".alert--error").inner_text().startswith("SEC-001")
    _shot(page, tmp_path, "login-failed")
    page.fill("#f-password", DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    assert page.url == live_server + "/"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "HealthGrid 区域卫生信息平台"
    assert page.locator(".user-box__name").inner_text() == "演示医生"
    nav = page.locator(".site-nav").first.inner_text()
    assert "地区与机构" in nav and "审计" not in nav
    _shot(page, tmp_path, "home-clinician")
    page.get_by_role("button", name="退出登录").click()
    assert "/login" in page.url
    page.goto(live_server + "/registry/alliances")
    assert "/login?next=" in page.url
    assert page.requested_hosts == {"127.0.0.1"}
    # the wrong password is answered 401, which the console reports
    assert [e for e in page.console_errors if "401" not in e] == []


def test_auditor_logs_in_with_a_code_and_reads_the_trail(page, live_server, region_url, tmp_path):  # noqa: F811
    log_in(page, live_server, "demo-auditor", next_path="/audit")
    assert "/login/second-factor" in page.url
    assert page.locator("h1").inner_text() == "双因素认证"
    _shot(page, tmp_path, "second-factor")
    page.fill("#f-code", totp_code(region_url, "demo-auditor"))
    page.get_by_role("button", name="验证").click()
    assert page.url == live_server + "/audit"
    assert page.locator("h1").inner_text() == "审计日志"
    rows = page.locator("table.audit tbody tr")
    assert rows.count() >= 1
    assert "demo-auditor" in page.locator("table.audit").inner_text()
    assert "双因素" in page.locator("table.audit").inner_text()
    _shot(page, tmp_path, "audit")
    page.locator("a.verify-link").click()
    assert page.locator(".verify-report").get_attribute("data-ok") == "true"
    _shot(page, tmp_path, "audit-verify")
    assert page.requested_hosts == {"127.0.0.1"}
    assert page.console_errors == []
