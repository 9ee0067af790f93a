"""Pages of the security context: log-in (password, then the second factor), second-factor
enrolment, password change, log-out, the auditor's view of the audit trail, a resident's
"who looked at my record", and the user list for administrators.

The log-in pages work without a user; every other page takes the request's ``Actor``
(``ActorDep``) and leaves the permission and scope checks to the services, which raise
coded errors the platform turns into its error page (or, for a GET without a user, a
redirect to the log-in page — see ``app._web_error``).

Cross-site request forgery: a logged-in form carries the session's CSRF token (checked by
``http.optional_actor``); the log-in form, which has no session yet, carries a random token
that is also in a short-lived SameSite=Strict cookie (double submit); the second-factor
form, whose session is not a full log-in yet, is checked here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ..errors import Conflict, Forbidden, HealthGridError, Invalid
from ..http import SessionDep
from ..registry import queries as registry_queries
from ..web import NavItem, Pager, add_messages, add_nav_item, page_language, pick
from ..web import render as render_page
from ..web.i18n import MESSAGES as CATALOGUE
from . import service, trail
from .domain import ACTION_LABELS, PURPOSES, ROLE_LABELS, SCOPE_LABELS, Actor, Perm, ScopeKind
from .http import (
    CSRF_FIELD,
    SESSION_COOKIE,
    ActorDep,
    OptionalActorDep,
    clear_session_cookie,
    client_of,
    set_session_cookie,
)

TEMPLATES = Path(__file__).parent / "templates"
router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "hg_login_csrf"
LOGIN_CSRF_MAX_AGE = 30 * 60
PageNo = Annotated[int, Query(ge=1, le=100_000)]

MESSAGES: dict[str, tuple[str, str]] = {
    "security.nav.audit": ("审计", "Audit"),
    "security.nav.users": ("用户", "Users"),
    "security.nav.access_log": ("我的访问记录", "My access log"),
    "security.login.title": ("登录", "Log in"),
    "security.login.lead": ("请使用平台账号登录。", "Log in with your platform account."),
    "security.login.username": ("用户名", "User name"),
    "security.login.password": ("密码", "Password"),
    "security.login.submit": ("登录", "Log in"),
    "security.login.notice": ("本系统含个人健康信息，所有访问均被记录并接受审计。",
                              "This system holds personal health information; every access is"
                              " recorded and audited."),
    "security.mfa.title": ("双因素认证", "Second factor"),
    "security.mfa.lead": ("请输入身份验证器应用中显示的 6 位动态验证码。",
                          "Enter the 6-digit code shown by your authenticator app."),
    "security.mfa.code": ("动态验证码", "Code"),
    "security.mfa.submit": ("验证", "Verify"),
    "security.mfa.other_user": ("换一个账号登录", "Log in as someone else"),
    "security.enrol.title": ("设置双因素认证", "Set up a second factor"),
    "security.enrol.lead": ("您的角色要求使用双因素认证（动态验证码）。请完成以下步骤：",
                            "Your role requires a second factor (a one-time code). Please:"),
    "security.enrol.step1": ("在手机上打开身份验证器应用（如 Microsoft Authenticator、Google 身份验证器）。",
                             "Open an authenticator app on your phone (e.g. Microsoft Authenticator,"
                             " Google Authenticator)."),
    "security.enrol.step2": ("扫描下方二维码，或手动输入密钥。",
                             "Scan the QR code below, or type in the key."),
    "security.enrol.step3": ("输入应用显示的 6 位验证码并确认。",
                             "Enter the 6-digit code the app shows and confirm."),
    "security.enrol.qr": ("二维码", "QR code"),
    "security.enrol.secret": ("密钥（手动输入）", "Key (to type in)"),
    "security.enrol.submit": ("确认启用", "Confirm"),
    "security.enrol.again": ("重新生成二维码", "Show a new QR code"),
    "security.enrol.retry": ("验证码不正确。请用已添加到应用中的账户重新输入验证码，或重新生成二维码。",
                             "The code was not accepted. Try the code again from the account you"
                             " added, or show a new QR code."),
    "security.password.title": ("修改密码", "Change password"),
    "security.password.lead": ("新密码至少 {n} 位，包含大写字母、小写字母、数字和符号中的至少三类，"
                               "且不得包含用户名。",
                               "At least {n} characters, with three of upper case, lower case, digits"
                               " and symbols, not containing the user name."),
    "security.password.old": ("当前密码", "Current password"),
    "security.password.new": ("新密码", "New password"),
    "security.password.confirm": ("确认新密码", "Confirm the new password"),
    "security.password.submit": ("修改密码", "Change password"),
    "security.password.mismatch": ("两次输入的新密码不一致。", "The two new passwords differ."),
    "security.password.done": ("密码已修改。", "Your password has been changed."),
    "security.password.expired": ("您的密码已过期，请设置新密码。",
                                  "Your password has expired; please set a new one."),
    "security.back_home": ("返回首页", "Back to the home page"),
    "security.audit.title": ("审计日志", "Audit trail"),
    "security.audit.lead": ("平台上所有涉及个人信息的访问、登录和管理操作的记录（防篡改哈希链）。",
                            "Every access to personal data, log-in and administrative action on"
                            " the platform (a tamper-evident hash chain)."),
    "security.audit.username": ("用户名", "User name"),
    "security.audit.id_number": ("患者身份证号", "Patient ID number"),
    "security.audit.action": ("操作", "Action"),
    "security.audit.outcome": ("结果", "Outcome"),
    "security.audit.since": ("起始日期", "From"),
    "security.audit.until": ("截止日期", "To"),
    "security.audit.break_glass_only": ("仅紧急访问", "Break-glass only"),
    "security.audit.unreviewed_only": ("仅未复核", "Unreviewed only"),
    "security.audit.verify": ("校验日志完整性", "Verify the chain"),
    "security.audit.none": ("没有符合条件的记录。", "No record matches."),
    "security.audit.col.time": ("时间", "Time"),
    "security.audit.col.user": ("用户", "User"),
    "security.audit.col.roles": ("角色", "Roles"),
    "security.audit.col.purpose": ("目的", "Purpose"),
    "security.audit.col.action": ("操作", "Action"),
    "security.audit.col.resource": ("对象", "Resource"),
    "security.audit.col.outcome": ("结果", "Outcome"),
    "security.audit.col.break_glass": ("紧急访问理由", "Break-glass reason"),
    "security.audit.col.review": ("复核", "Review"),
    "security.outcome.success": ("成功", "Success"),
    "security.outcome.denied": ("拒绝", "Denied"),
    "security.outcome.failed": ("失败", "Failed"),
    "security.review.verdict": ("复核结论", "Verdict"),
    "security.review.justified": ("合理", "Justified"),
    "security.review.unjustified": ("不合理", "Unjustified"),
    "security.review.note": ("备注", "Note"),
    "security.review.submit": ("提交复核", "Review"),
    "security.review.pending": ("待复核", "To review"),
    "security.review.by": ("{reviewer} 于 {time}", "by {reviewer} at {time}"),
    "security.verify.title": ("审计日志完整性校验", "Audit chain verification"),
    "security.verify.ok": ("校验通过：共检查 {n} 条记录，哈希链完整，未发现篡改或删除。",
                           "Verified: {n} records checked; the hash chain is intact, nothing was"
                           " changed or deleted."),
    "security.verify.failed": ("校验未通过：共检查 {n} 条记录，发现以下问题：",
                               "Verification failed: {n} records checked; problems found:"),
    "security.verify.last": ("最后一条记录序号", "Last record number"),
    "security.verify.back": ("返回审计日志", "Back to the audit trail"),
    "security.access_log.title": ("谁查看了我的档案", "Who looked at my record"),
    "security.access_log.lead": ("其他人（医生、护士、公共卫生人员等）访问您的健康档案的全部记录。",
                                 "Every access by someone else (doctors, nurses, public health"
                                 " staff …) to your health record."),
    "security.access_log.none": ("还没有人访问过您的档案。", "Nobody has looked at your record yet."),
    "security.users.title": ("用户", "Users"),
    "security.users.lead": ("您管辖范围内的平台用户。身份证号和手机号已脱敏。",
                            "Platform users in your scope. ID numbers and phone numbers are masked."),
    "security.users.name": ("用户名或姓名", "User name or name"),
    "security.users.col.username": ("用户名", "User name"),
    "security.users.col.name": ("姓名", "Name"),
    "security.users.col.roles": ("角色与范围", "Roles and scopes"),
    "security.users.col.id_number": ("身份证号", "ID number"),
    "security.users.col.phone": ("手机号", "Phone"),
    "security.users.col.mfa": ("双因素", "Second factor"),
    "security.users.col.status": ("状态", "Status"),
    "security.users.col.last_login": ("最近登录", "Last log-in"),
    "security.users.active": ("正常", "Active"),
    "security.users.inactive": ("已停用", "Disabled"),
    "security.users.locked": ("已锁定", "Locked"),
    "security.users.mfa_on": ("已启用", "On"),
    "security.users.mfa_off": ("未启用", "Off"),
    "security.users.none": ("没有符合条件的用户。", "No user matches."),
    "security.bad_date": ("日期格式应为 YYYY-MM-DD。", "Dates are written YYYY-MM-DD."),
    "error.SEC-001": ("用户名或密码错误。", "Wrong user name or password."),
    "error.SEC-002": ("多次登录失败，账号已被临时锁定，请稍后再试或联系管理员解锁。",
                      "The account is locked after repeated failed log-ins; try again later or ask"
                      " an administrator."),
    "error.SEC-004": ("该地址登录失败次数过多，请稍后再试。",
                      "Too many failed log-ins from this address; try again later."),
    "error.SEC-005": ("动态验证码错误或已使用过。", "The code is wrong or was already used."),
    "error.SEC-020": ("密码长度不符合要求。", "The password is too short or too long."),
    "error.SEC-021": ("密码须包含大写字母、小写字母、数字和符号中的至少三类。",
                      "Use at least three of upper case, lower case, digits and symbols."),
    "error.SEC-022": ("密码不得包含用户名。", "The password must not contain the user name."),
    "error.SEC-026": ("当前密码错误。", "The current password is wrong."),
    "error.SEC-027": ("新密码不能与当前密码相同。", "The new password must differ from the current one."),
    "error.SEC-030": ("身份证号应为 18 位（或 15 位旧号码）。",
                      "An ID number has 18 characters (or 15 for an old one)."),
    "error.SEC-031": ("身份证号前两位不是省份代码。",
                      "The first two digits of the ID number are not a province."),
    "error.SEC-032": ("身份证号中的出生日期无效。", "The birth date in the ID number is not valid."),
    "error.SEC-033": ("身份证号校验码不正确。", "The check digit of the ID number is wrong."),
    "error.SEC-050": ("双因素认证已设置；如需重置请联系管理员。",
                      "A second factor is already set up; ask an administrator to reset it."),
    "error.SEC-051": ("请先开始设置双因素认证。", "Start the second-factor set-up first."),
    "error.SEC-061": ("该账号未关联居民身份（无身份证号），没有个人档案访问记录。",
                      "This account is not linked to a resident, so it has no access log."),
    "error.SEC-062": ("请选择复核结论。", "Choose a verdict."),
    "error.SEC-063": ("没有这条紧急访问记录。", "There is no such break-glass access."),
    "error.SEC-064": ("这条记录已经复核过了。", "This access has already been reviewed."),
    "error.SEC-100": ("请先登录。", "Please log in first."),
    "error.SEC-102": ("您的角色无权访问此页面。", "Your role does not allow this page."),
    "error.SEC-107": ("您的角色需要先完成双因素认证。", "Your role requires a second factor first."),
    "error.SEC-108": ("表单已过期或并非来自本站，请刷新页面后重试。",
                      "The form has expired or did not come from this site; reload the page and try again."),
}
add_messages(MESSAGES)

add_nav_item(NavItem("security.nav.audit", "/audit", order=80, perm=Perm.AUDIT_READ))
add_nav_item(NavItem("security.nav.users", "/admin/users", order=85, perm=Perm.USER_READ))
add_nav_item(NavItem("security.nav.access_log", "/me/access-log", order=90, perm=Perm.SELF_RECORD))


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if target in ("", "/") else f"/login?next={quote(target, safe='')}"


async def page_actor(actor: ActorDep) -> Actor:
    """Every page but the log-in pages needs a logged-in user."""
    return actor


# -- helpers -------------------------------------------------------------------------------


def safe_next(value: str | None) -> str:
    """A local path to go on to after logging in; anything else (another host, a scheme,
    ``//host``, a backslash trick) becomes the home page."""
    value = (value or "").strip()
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 32 for c in value) or urlsplit(value).netloc):
        return "/"
    return value


def _with_next(path: str, target: str) -> str:
    return path if target == "/" else f"{path}?next={quote(target, safe='')}"


@dataclass(frozen=True)
class ErrorView:
    code: str
    text: str  # the catalogue's explanation in the page's language, else the coded message
    status: int


def _error(request: Request, exc: HealthGridError) -> ErrorView:
    key = f"error.{exc.code}"
    text = CATALOGUE.get(key, page_language(request)) if key in CATALOGUE else exc.message
    return ErrorView(exc.code, text, exc.status)


def _csrf_error(request: Request) -> ErrorView:
    return _error(request, Forbidden("SEC-108", "the form has expired or did not come from this site"))


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(str(a), str(b))


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.security.cookie_secure
    return setting == "always" or (setting == "auto" and request.url.scheme == "https")


def _set_cookie(request: Request, response: Response, token: str) -> None:
    set_session_cookie(request, response, token,
                       secure_setting=request.app.state.settings.security.cookie_secure)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@dataclass(frozen=True)
class Labels:
    """Codes of the security context as text in the page's language."""

    lang: str

    def role(self, code: str) -> str:
        if code == "system":  # the platform itself (synthetic data, jobs, migrations)
            return pick(("平台", "Platform"), self.lang)
        return pick(ROLE_LABELS.get(code), self.lang, code)  # type: ignore[arg-type]

    def roles(self, codes: str | None) -> str:
        return "、".join(self.role(c) for c in (codes or "").split()) if self.lang == "zh" \
            else ", ".join(self.role(c) for c in (codes or "").split())

    def purpose(self, code: str | None) -> str:
        return pick(PURPOSES.get(code or ""), self.lang, code or "")

    def action(self, code: str) -> str:
        return pick(ACTION_LABELS.get(code), self.lang, code)  # type: ignore[arg-type]

    def scope(self, kind: str) -> str:
        return pick(SCOPE_LABELS.get(kind), self.lang, kind)  # type: ignore[arg-type]


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render_page(request, template, {"sl": Labels(page_language(request)), **context},
                       status_code=status_code)


# -- log-in ----------------------------------------------------------------------------------


def _login_page(request: Request, *, target: str, username: str = "", error: ErrorView | None = None,
                status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _render(request, "security/login.html", status_code, csrf=token, next=target,
                       username=username, error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_CSRF_MAX_AGE, httponly=True,
                        samesite="strict", secure=_secure(request), path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:  # noqa: A002 (the query's name)
    return _login_page(request, target=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1000)] = "", next: Annotated[str, Form()] = "",  # noqa: A002
          csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    target = safe_next(next)
    username = username.strip()
    if not _same(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(request, target=target, username=username, error=_csrf_error(request),
                           status_code=403)
    try:
        result = service.authenticate(session, username=username, password=password,
                                      client=client_of(request), surface="web")
    except HealthGridError as exc:
        return _login_page(request, target=target, username=username, error=_error(request, exc),
                           status_code=exc.status)
    token, _csrf = service.start_session(session, result.user, client=client_of(request),
                                         mfa_passed=not (result.needs_totp or result.must_enrol_totp))
    after = "/account/password?expired=1" if result.password_expired else target
    if result.needs_totp:
        url = _with_next("/login/second-factor", after)
    elif result.must_enrol_totp:
        url = _with_next("/account/second-factor", after)
    else:
        url = after
    response = _redirect(url)
    _set_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _pending_session(request: Request, session: Session) -> service.SessionState | None:
    token = request.cookies.get(SESSION_COOKIE)
    return service.resolve_session(session, token) if token else None


@router.get("/login/second-factor", response_class=HTMLResponse)
def second_factor_form(request: Request, session: SessionDep, next: str = "") -> Response:  # noqa: A002
    target = safe_next(next)
    state = _pending_session(request, session)
    if state is None:
        return _redirect(_with_next("/login", target))
    if state.mfa_passed:
        return _redirect(target)
    if not state.user.totp_enabled:
        return _redirect(_with_next("/account/second-factor", target))
    return _render(request, "security/second_factor.html", csrf=state.csrf_token, next=target, error=None,
                   username=state.user.username)


@router.post("/login/second-factor", response_class=HTMLResponse)
def second_factor(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=20)] = "",
                  next: Annotated[str, Form()] = "",  # noqa: A002
                  csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    target = safe_next(next)
    state = _pending_session(request, session)
    if state is None:
        return _redirect(_with_next("/login", target))
    if not _same(csrf_token, state.csrf_token):
        return _render(request, "security/second_factor.html", 403, csrf=state.csrf_token, next=target,
                       error=_csrf_error(request), username=state.user.username)
    if state.mfa_passed:
        return _redirect(target)
    try:
        service.verify_second_factor(session, user_id=state.user.id, code=code, client=client_of(request),
                                     surface="web")
    except HealthGridError as exc:
        return _render(request, "security/second_factor.html", exc.status, csrf=state.csrf_token, next=target,
                       error=_error(request, exc), username=state.user.username)
    token = service.mark_session_mfa(session, state.session_id)
    response = _redirect(target)
    _set_cookie(request, response, token)
    return response


# -- second-factor enrolment -------------------------------------------------------------


def _qr_svg(uri: str) -> str:
    # segno's inline SVG has presentation attributes only (no style attribute), so the
    # strict Content-Security-Policy allows it.
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="QR")


def _csrf_of(request: Request) -> str:
    state = getattr(request.state, "web_session", None)
    return state.csrf_token if state else ""


@router.get("/account/second-factor", response_class=HTMLResponse)
def enrol_form(request: Request, session: SessionDep, actor: ActorDep, next: str = "") -> Response:  # noqa: A002
    target = safe_next(next)
    try:
        uri = service.begin_totp_enrolment(session, actor)
    except Conflict:
        # Already set up: someone who has not given it yet goes to the second step.
        if not actor.mfa:
            return _redirect(_with_next("/login/second-factor", target))
        raise
    secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
    return _render(request, "security/enrol.html", qr=_qr_svg(uri), secret=secret, next=target,
                   csrf=_csrf_of(request), error=None)


@router.post("/account/second-factor", response_class=HTMLResponse)
def enrol(request: Request, session: SessionDep, actor: ActorDep,
          code: Annotated[str, Form(max_length=20)] = "",
          next: Annotated[str, Form()] = "") -> Response:  # noqa: A002
    target = safe_next(next)
    try:
        service.confirm_totp_enrolment(session, actor, code)
    except HealthGridError as exc:
        # The secret stays as it was: the account already added in the app still works.
        return _render(request, "security/enrol.html", exc.status, qr=None, secret=None, next=target,
                       csrf=_csrf_of(request), error=_error(request, exc))
    response = _redirect(target)
    state = getattr(request.state, "web_session", None)
    if state is not None:
        _set_cookie(request, response, service.mark_session_mfa(session, state.session_id))
    return response


# -- log-out and password -----------------------------------------------------------------


@router.post("/logout")
def logout(request: Request, session: SessionDep, actor: OptionalActorDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if actor is not None and token:
        service.end_session(session, actor, token)
    response = _redirect("/login")
    clear_session_cookie(response)
    return response


def _min_length(request: Request) -> int:
    return request.app.state.settings.security.password_min_length


def _full_login(actor: Actor) -> None:
    """The form is of no use before the second factor: send the user there (app._web_error
    redirects SEC-107 on GET). The service refuses the change itself, too."""
    if actor.needs_mfa() and not actor.mfa:
        raise Forbidden("SEC-107", "your role requires a second factor (TOTP)")


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request, actor: ActorDep, expired: str = "") -> HTMLResponse:
    _full_login(actor)
    return _render(request, "security/password.html", csrf=_csrf_of(request), error=None, done=False,
                   expired=bool(expired), min_length=_min_length(request))


@router.post("/account/password", response_class=HTMLResponse)
def change_password(request: Request, session: SessionDep, actor: ActorDep,
                    old_password: Annotated[str, Form(max_length=1000)] = "",
                    new_password: Annotated[str, Form(max_length=1000)] = "",
                    confirm_password: Annotated[str, Form(max_length=1000)] = "") -> HTMLResponse:
    error: ErrorView | None = None
    if new_password != confirm_password:
        error = ErrorView("SEC-028", CATALOGUE.get("security.password.mismatch", page_language(request)), 422)
    else:
        try:
            service.change_password(session, actor, old_password=old_password, new_password=new_password)
        except HealthGridError as exc:
            error = _error(request, exc)
    return _render(request, "security/password.html", error.status if error else 200, csrf=_csrf_of(request),
                   error=error, done=error is None, expired=False, min_length=_min_length(request))


# -- audit trail ----------------------------------------------------------------------------

OUTCOMES = ("success", "denied", "failed")


def _local_day(request: Request, value: str) -> datetime | None:
    """A local date (the configured zone, Asia/Shanghai) as the UTC instant it starts."""
    day = date.fromisoformat(value)
    return datetime.combine(day, time(), tzinfo=request.app.state.web.zone).astimezone(UTC)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, actor: ActorDep, username: str = "",
               id_number: str = "", action: str = "", outcome: str = "", since: str = "", until: str = "",
               break_glass: str = "", unreviewed: str = "", page: PageNo = 1) -> HTMLResponse:
    pager = Pager(page)
    errors: list[ErrorView] = []
    f = trail.AuditFilter(username=username.strip() or None,
                          action=action if action in ACTION_LABELS else None,
                          outcome=outcome if outcome in OUTCOMES else None,
                          break_glass_only=bool(break_glass), unreviewed_only=bool(unreviewed))
    try:
        f.since = _local_day(request, since.strip()) if since.strip() else None
        end = _local_day(request, until.strip()) if until.strip() else None
        f.until = end + timedelta(days=1) if end else None
    except ValueError:
        errors.append(ErrorView("HG-422", CATALOGUE.get("security.bad_date", page_language(request)), 422))
    if id_number.strip():
        try:
            f.person_key = service.find_person_key(session, id_number.strip())
        except Invalid as exc:
            errors.append(_error(request, exc))
    result = trail.search(session, actor, f, offset=pager.offset, limit=pager.size) if not errors else None
    return _render(request, "security/audit.html", 422 if errors else 200,
                   result=result, pager=pager.with_total(result.total if result else 0), errors=errors,
                   form={"username": username, "id_number": id_number, "action": action, "outcome": outcome,
                         "since": since, "until": until, "break_glass": bool(break_glass),
                         "unreviewed": bool(unreviewed)},
                   actions=list(ACTION_LABELS), outcomes=OUTCOMES, csrf=_csrf_of(request),
                   can_review=actor.can(Perm.AUDIT_REVIEW), back=request.url.path
                   + (f"?{request.url.query}" if request.url.query else ""))


@router.post("/audit/{audit_id}/review")
def review(request: Request, session: SessionDep, actor: ActorDep, audit_id: int,
           verdict: Annotated[str, Form(max_length=20)] = "", note: Annotated[str, Form(max_length=500)] = "",
           back: Annotated[str, Form()] = "") -> Response:
    trail.review_break_glass(session, actor, audit_id, verdict=verdict, note=note or None)
    target = safe_next(back)
    return _redirect(target if target.startswith("/audit") else "/audit")


@router.get("/audit/verify", response_class=HTMLResponse)
def verify_page(request: Request, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    report = trail.verify_as(session, actor)
    return _render(request, "security/verify.html", report=report)


# -- a resident's access log -----------------------------------------------------------------


@router.get("/me/access-log", response_class=HTMLResponse)
def access_log(request: Request, session: SessionDep, actor: ActorDep, page: PageNo = 1) -> HTMLResponse:
    pager = Pager(page)
    result = trail.access_log_for_me(session, actor, offset=pager.offset, limit=pager.size)
    return _render(request, "security/access_log.html", result=result, pager=pager.with_total(result.total))


# -- users -------------------------------------------------------------------------------------


def _scope_names(session: Session, views: list[service.UserView]) -> dict[tuple[str, int], str]:
    """Names of the organisations and divisions the listed grants are scoped to."""
    names: dict[tuple[str, int], str] = {}
    divisions = {g.scope_id for v in views for g in v.grants
                 if g.scope_kind is ScopeKind.DIVISION and g.scope_id is not None}
    for div in registry_queries.divisions_by_ids(session, sorted(divisions)) if divisions else []:
        names[(ScopeKind.DIVISION, div.id)] = div.name
    orgs = sorted({g.scope_id for v in views for g in v.grants
                   if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id is not None})
    if orgs:
        found = registry_queries.search_organizations(session, registry_queries.OrgFilter(ids=orgs),
                                                      limit=len(orgs))
        names.update({(ScopeKind.ORGANIZATION, org.id): org.name for org in found.items})
    return names


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, actor: ActorDep, name: str = "",
               page: PageNo = 1) -> HTMLResponse:
    pager = Pager(page)
    total, views = service.list_users(session, actor, name=name.strip() or None, offset=pager.offset,
                                      limit=pager.size)
    return _render(request, "security/users.html", users=views, scope_names=_scope_names(session, views),
                   name=name, pager=pager.with_total(total))
