"""Security pages with real authentication (``secure_client``): the log-in form and its
CSRF double submit, the second factor, pages sending anonymous visitors to the log-in,
the auditor's trail with the break-the-glass review, a resident's access log, the user
list, log-out, and navigation showing only what the user may open."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select
from tests.security.conftest import PASSWORD, actor_of

from healthgrid.security import access, service
from healthgrid.security.domain import AuditAction, Perm, Role, ScopeKind
from healthgrid.security.models import AuditEvent
from healthgrid.security.web import LOGIN_CSRF_COOKIE, safe_next

HTML = {"accept": "text/html"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page has no csrf_token field"
    return found.group(1)


def _post_login(client, username: str, password: str = PASSWORD, next_: str = ""):
    form = client.get("/login" + (f"?next={next_}" if next_ else ""), headers=HTML)
    assert form.status_code == 200
    data = {"username": username, "password": password, "csrf_token": _csrf(form.text)}
    if next_:
        data["next"] = next_
    return client.post("/login", data=data, headers=HTML, follow_redirects=False)


def login(client, world, role: Role, next_: str = "") -> str:
    """Log in through the pages (password, then the code); returns where it ends up."""
    user = world.users[role]
    answer = _post_login(client, user.username, next_=next_)
    assert answer.status_code == 303, answer.text
    target = answer.headers["location"]
    if target.startswith("/login/second-factor"):
        page = client.get(target, headers=HTML)
        assert page.status_code == 200
        answer = client.post("/login/second-factor", headers=HTML, follow_redirects=False,
                             data={"code": pyotp.TOTP(world.totp[role]).now(), "csrf_token": _csrf(page.text),
                                   "next": parse_qs(urlsplit(target).query).get("next", ["/"])[0]})
        assert answer.status_code == 303, answer.text
        target = answer.headers["location"]
    return target


def test_login_form_renders_in_chinese_and_english(secure_client):
    zh = secure_client.get("/login", headers=HTML)
    assert zh.status_code == 200
    assert '<html lang="zh-CN">' in zh.text
    assert "用户名" in zh.text and "密码" in zh.text and 'name="next"' in zh.text
    assert 'class="site-nav"' in zh.text and "/registry/divisions" not in zh.text  # no navigation
    cookie = zh.headers["set-cookie"]
    assert LOGIN_CSRF_COOKIE in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    en = secure_client.get("/login?lang=en", headers=HTML)
    assert '<html lang="en">' in en.text
    assert "User name" in en.text and "Log in" in en.text


def test_wrong_password_re_renders_the_form_with_the_coded_error(secure_client, world):
    answer = _post_login(secure_client, world.users[Role.CLINICIAN].username, password="Wr0ng-Passw0rd!")
    assert answer.status_code == 401
    assert 'data-error-code="SEC-001"' in answer.text
    assert "用户名或密码错误" in answer.text
    assert 'value="u-clinician"' in answer.text  # the user name is kept
    assert "hg_session" not in answer.headers.get("set-cookie", "")


def test_login_without_the_matching_csrf_token_is_refused(secure_client, world):
    secure_client.get("/login", headers=HTML)
    answer = secure_client.post("/login", headers=HTML, follow_redirects=False,
                                data={"username": "u-clinician", "password": PASSWORD,
                                      "csrf_token": "forged"})
    assert answer.status_code == 403
    assert 'data-error-code="SEC-108"' in answer.text
    assert "hg_session" not in answer.headers.get("set-cookie", "")


def test_successful_login_sets_a_session_cookie_and_goes_on(secure_client, world):
    answer = _post_login(secure_client, "u-nurse", next_="/registry/alliances")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/second-factor?next=%2Fregistry%2Falliances"
    cookie = answer.headers["set-cookie"]
    assert "hg_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


def test_a_user_without_a_second_factor_goes_straight_to_the_page(secure_client, session, world):
    user = service.create_user(session, actor_of(session, world, Role.SYSTEM_ADMIN), username="plain-doctor",
                               display_name="李医生", password=PASSWORD,
                               grants=[service.GrantSpec(Role.CLINICIAN, ScopeKind.ORGANIZATION,
                                                         world.region.county_hospital.id)],
                               org_id=world.region.county_hospital.id)
    assert not user.totp_enabled
    answer = _post_login(secure_client, "plain-doctor", next_="/registry/alliances")
    assert (answer.status_code, answer.headers["location"]) == (303, "/registry/alliances")
    page = secure_client.get("/registry/alliances", headers=HTML)
    assert page.status_code == 200 and "李医生" in page.text


@pytest.mark.parametrize("value, expected", [
    ("/audit?page=2", "/audit?page=2"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("", "/"), ("javascript:alert(1)", "/")])
def test_next_is_only_a_local_path(value, expected):
    assert safe_next(value) == expected


def test_a_page_without_login_redirects_to_the_login_page(secure_client):
    answer = secure_client.get("/registry/divisions?level=L2", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fregistry%2Fdivisions%3Flevel%3DL2"
    home = secure_client.get("/", headers=HTML, follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/login")


def test_an_administrator_must_pass_the_second_factor_before_the_user_list(secure_client, world):
    answer = _post_login(secure_client, "u-system_admin", next_="/admin/users")
    assert answer.headers["location"] == "/login/second-factor?next=%2Fadmin%2Fusers"
    # Half logged in: pages send them back to the second step.
    early = secure_client.get("/admin/users", headers=HTML, follow_redirects=False)
    assert (early.status_code, early.headers["location"]) == (303, "/login/second-factor")
    form = secure_client.get("/login/second-factor?next=/admin/users", headers=HTML)
    assert "动态验证码" in form.text
    wrong = secure_client.post("/login/second-factor", headers=HTML, follow_redirects=False,
                               data={"code": "000000", "csrf_token": _csrf(form.text),
                                     "next": "/admin/users"})
    assert wrong.status_code == 401 and 'data-error-code="SEC-005"' in wrong.text
    forged = secure_client.post("/login/second-factor", headers=HTML, follow_redirects=False,
                                data={"code": pyotp.TOTP(world.totp[Role.SYSTEM_ADMIN]).now(),
                                      "csrf_token": "x"})
    assert forged.status_code == 403 and 'data-error-code="SEC-108"' in forged.text
    ok = secure_client.post("/login/second-factor", headers=HTML, follow_redirects=False,
                            data={"code": pyotp.TOTP(world.totp[Role.SYSTEM_ADMIN]).now(),
                                  "csrf_token": _csrf(form.text), "next": "/admin/users"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/admin/users")
    assert "hg_session=" in ok.headers["set-cookie"]  # a new token after the second step
    users = secure_client.get("/admin/users", headers=HTML)
    assert users.status_code == 200
    assert 'data-username="u-resident"' in users.text
    assert "110105********002X" in users.text and "11010519491231002X" not in users.text
    assert "138****5678" in users.text
    assert "居民" in users.text and "系统管理员" in users.text and "青川省" in users.text


def test_must_enrol_a_second_factor_when_the_role_needs_one(secure_client, session, world):
    admin = actor_of(session, world, Role.SYSTEM_ADMIN)
    service.create_user(session, admin, username="new-auditor", display_name="新审计员", password=PASSWORD,
                        grants=[service.GrantSpec(Role.AUDITOR, ScopeKind.DIVISION,
                                                  world.region.province.id)])
    answer = _post_login(secure_client, "new-auditor", next_="/audit")
    assert answer.headers["location"] == "/account/second-factor?next=%2Faudit"
    page = secure_client.get("/account/second-factor?next=/audit", headers=HTML)
    assert page.status_code == 200 and "<svg" in page.text and "style=" not in page.text
    secret = re.search(r"data-secret>([A-Z2-7]+)<", page.text).group(1)
    bad = secure_client.post("/account/second-factor", headers=HTML, follow_redirects=False,
                             data={"code": "000000", "csrf_token": _csrf(page.text), "next": "/audit"})
    assert bad.status_code == 422 and 'data-error-code="SEC-005"' in bad.text
    ok = secure_client.post("/account/second-factor", headers=HTML, follow_redirects=False,
                            data={"code": pyotp.TOTP(secret).now(), "csrf_token": _csrf(page.text),
                                  "next": "/audit"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/audit")
    assert secure_client.get("/audit", headers=HTML).status_code == 200


def _break_the_glass(session, world) -> AuditEvent:
    glass = actor_of(session, world, Role.CLINICIAN, break_glass="昏迷患者急诊抢救，需要查看既往病史")
    access.check(session, glass, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                 resource_id=42, patient_id=42)
    session.commit()
    return session.scalars(select(AuditEvent).where(AuditEvent.break_glass.is_not(None))).one()


def test_the_auditor_lists_the_trail_and_reviews_a_break_the_glass_access(secure_client, session, world):
    flagged = _break_the_glass(session, world)
    assert login(secure_client, world, Role.AUDITOR, next_="/audit") == "/audit"
    page = secure_client.get("/audit", headers=HTML)
    assert page.status_code == 200
    assert "审计日志" in page.text and "登录" in page.text and 'href="/audit/verify"' in page.text
    assert page.text.count("<tr data-audit-id=") >= 2
    row = re.search(rf'<tr data-audit-id="{flagged.id}".*?</tr>', page.text, re.S).group(0)
    assert "紧急诊疗" in row and "昏迷患者急诊抢救" in row and "待复核" in row
    assert f'action="/audit/{flagged.id}/review"' in row
    only = secure_client.get("/audit?break_glass=1&unreviewed=1&username=u-clinician", headers=HTML)
    assert only.text.count("<tr data-audit-id=") == 1
    done = secure_client.post(f"/audit/{flagged.id}/review", headers=HTML, follow_redirects=False,
                              data={"verdict": "justified", "note": "核实为急诊", "csrf_token": _csrf(row),
                                    "back": "/audit?break_glass=1"})
    assert (done.status_code, done.headers["location"]) == (303, "/audit?break_glass=1")
    after = secure_client.get("/audit?break_glass=1", headers=HTML)
    row = re.search(rf'<tr data-audit-id="{flagged.id}".*?</tr>', after.text, re.S).group(0)
    assert "合理" in row and "u-auditor" in row and "核实为急诊" in row and "<form" not in row
    again = secure_client.post(f"/audit/{flagged.id}/review", headers=HTML,
                               data={"verdict": "justified", "csrf_token": _csrf(after.text)})
    assert again.status_code == 409 and "SEC-064" in again.text
    forged = secure_client.post(f"/audit/{flagged.id}/review", headers=HTML,
                                data={"verdict": "unjustified", "csrf_token": "forged"})
    assert forged.status_code == 403 and "SEC-108" in forged.text
    en = secure_client.get("/audit?lang=en&action=login", headers=HTML)
    assert "Audit trail" in en.text and "Log-in" in en.text
    assert 'data-action="view"' not in en.text
    bad = secure_client.get("/audit?since=2024-13-01&id_number=123", headers=HTML)
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text and "SEC-030" in bad.text
    verify = secure_client.get("/audit/verify?lang=zh", headers=HTML)
    assert verify.status_code == 200 and 'data-ok="true"' in verify.text and "校验通过" in verify.text


def test_audit_dates_are_local_days(secure_client, world):
    login(secure_client, world, Role.AUDITOR)
    today = secure_client.get("/audit?since=2000-01-01&until=2999-12-31", headers=HTML)
    assert today.text.count("<tr data-audit-id=") >= 1
    none = secure_client.get("/audit?until=2000-01-01", headers=HTML)
    assert "没有符合条件的记录" in none.text


def test_a_resident_sees_their_access_log_and_no_auditor_links(secure_client, session, world):
    admin = actor_of(session, world, Role.SYSTEM_ADMIN)
    service.get_user(session, admin, world.users[Role.RESIDENT].id)  # an access to the resident's data
    session.commit()
    home = login(secure_client, world, Role.RESIDENT)
    assert home == "/"
    page = secure_client.get("/me/access-log", headers=HTML)
    assert page.status_code == 200
    assert "谁查看了我的档案" in page.text and "u-system_admin" in page.text and "系统管理" in page.text
    nav = re.search(r'<nav class="site-nav".*?</nav>', page.text, re.S).group(0)
    assert "我的访问记录" in nav and "地区与机构" in nav
    assert "审计" not in nav and "/admin/users" not in nav
    assert "User resident" in page.text and 'action="/logout"' in page.text
    assert secure_client.get("/audit", headers=HTML).status_code == 403


def test_nav_of_an_auditor_shows_the_audit_link_but_not_the_access_log(secure_client, world):
    login(secure_client, world, Role.AUDITOR)
    home = secure_client.get("/", headers=HTML)
    nav = re.search(r'<nav class="site-nav".*?</nav>', home.text, re.S).group(0)
    assert 'href="/audit"' in nav and "/me/access-log" not in nav and "/admin/users" not in nav
    assert "User auditor" in home.text and 'action="/logout"' in home.text


def test_logout_ends_the_session(secure_client, world):
    login(secure_client, world, Role.CLINICIAN)
    home = secure_client.get("/", headers=HTML)
    assert home.status_code == 200
    old = secure_client.cookies.get("hg_session")
    forged = secure_client.post("/logout", headers=HTML, data={"csrf_token": "forged"},
                                follow_redirects=False)
    assert forged.status_code == 403
    out = secure_client.post("/logout", headers=HTML, data={"csrf_token": _csrf(home.text)},
                             follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    secure_client.cookies.set("hg_session", old)  # the old cookie, replayed
    again = secure_client.get("/", headers=HTML, follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/login")


def test_change_password(secure_client, world):
    login(secure_client, world, Role.CLINICIAN)
    form = secure_client.get("/account/password", headers=HTML)
    assert form.status_code == 200 and "当前密码" in form.text
    token = _csrf(form.text)
    mismatch = secure_client.post("/account/password", headers=HTML, data={
        "old_password": PASSWORD, "new_password": "N3w-Passw0rd!x", "confirm_password": "other",
        "csrf_token": token})
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.text
    wrong = secure_client.post("/account/password", headers=HTML, data={
        "old_password": "nope", "new_password": "N3w-Passw0rd!x", "confirm_password": "N3w-Passw0rd!x",
        "csrf_token": token})
    assert wrong.status_code in (403, 422) and 'data-error-code="SEC-026"' in wrong.text
    ok = secure_client.post("/account/password", headers=HTML, data={
        "old_password": PASSWORD, "new_password": "N3w-Passw0rd!x", "confirm_password": "N3w-Passw0rd!x",
        "csrf_token": token})
    assert ok.status_code == 200 and "密码已修改" in ok.text


def test_pages_carry_no_inline_script_or_style(secure_client, world):
    login(secure_client, world, Role.AUDITOR)
    for path in ("/", "/audit", "/audit/verify", "/account/password"):
        html = secure_client.get(path, headers=HTML).text
        assert "style=" not in html and "<style" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
