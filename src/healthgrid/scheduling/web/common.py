"""What every scheduling page shares: codes as text in the page's language, coded errors
and notices carried to the next page (post/redirect/get with a short-lived cookie holding a
message key and its parameters, never personal data), rendering, and small parsers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ...errors import HealthGridError
from ...patients.domain import KIN_RELATIONSHIPS
from ...security.domain import Actor, Perm
from ...web import page_language, pick
from ...web import render as render_page
from ...web.i18n import MESSAGES as CATALOGUE
from .. import domain as d
from ..web_messages import WEEKDAYS

FLASH_COOKIE = "hg_sched_flash"
# Pages whose notices this cookie may carry (the cookie is sent to every path).
FLASH_PATHS = ("/booking", "/appointments", "/account/family", "/scheduling/", "/inbox")


@dataclass(frozen=True)
class Labels:
    """Codes of scheduling as text in the page's language; an unknown code shows as itself."""

    lang: str

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def fee(self, code: str) -> str:
        return pick(d.FEE_CLASS_LABELS.get(code), self.lang, code)

    def pool(self, code: str) -> str:
        return pick(d.POOL_LABELS.get(code), self.lang, code)

    def status(self, code: str) -> str:
        return pick(d.STATUS_LABELS.get(code), self.lang, code)

    def part(self, code: str) -> str:
        return pick(d.PARTS.get(code), self.lang, code)

    def relationship(self, code: str) -> str:
        return pick(KIN_RELATIONSHIPS.get(code), self.lang, code)

    def weekday(self, n: int) -> str:
        return pick(WEEKDAYS[n], self.lang) if 0 <= n <= 6 else str(n)

    def day(self, value: date) -> str:
        return f"{value.isoformat()} {self.weekday(value.weekday())}"

    def clock(self, minute: int) -> str:
        return d.clock(minute)

    def percent(self, ratio: float) -> str:
        return f"{ratio * 100:.1f}".rstrip("0").rstrip(".") + "%"

    def cancel_reason(self, text: str | None) -> str:
        """A reason as stored, a stop-clinic notice's ("stop_clinic: …") said in the page's
        language."""
        stopped = stop_reason(text)
        return self.msg("sched.rebook.stopped", reason=stopped) if stopped is not None else (text or "")


stop_reason = d.stop_reason  # the rule lives in the domain (service and pages agree)


@dataclass(frozen=True)
class Flash:
    kind: str  # ok | error
    text: str
    code: str | None = None
    href: str | None = None


def error_text(lang: str, exc: HealthGridError) -> str:
    key = f"error.{exc.code}"
    return CATALOGUE.get(key, lang) if key in CATALOGUE else exc.message


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.security.cookie_secure
    return setting == "always" or (setting == "auto" and request.url.scheme == "https")


def redirect(request: Request, url: str, **flash: object) -> RedirectResponse:
    """Post/redirect/get with a one-time notice for the next page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, urlencode({k: str(v) for k, v in flash.items()}), max_age=120,
                            httponly=True, samesite="lax", secure=_secure(request), path="/")
    return response


def fail(request: Request, url: str, exc: HealthGridError) -> RedirectResponse:
    """A refused write: back to the page with the coded error as its notice (nothing was
    written: the service rolled back)."""
    return redirect(request, url, k="error", code=exc.code, text=exc.message[:300])


def _take_flash(request: Request, labels: Labels) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or not request.url.path.startswith(FLASH_PATHS):
        return None
    data = dict(parse_qsl(raw))
    if data.pop("k", "") == "error":
        code = data.get("code", "")
        known = f"error.{code}"
        text = labels.msg(known) if known in CATALOGUE else ""
        detail = data.get("text", "")
        return Flash("error", f"{text} {detail}".strip() if text else detail or code, code)
    key = data.pop("m", "")
    if not key.startswith(("sched.flash.", "notif.flash.")) or key not in CATALOGUE:
        return None
    href = data.pop("href", None)
    href = href if href and href.startswith(FLASH_PATHS) else None
    try:
        return Flash("ok", labels.msg(key, **data), None, href)
    except (KeyError, IndexError):
        return None


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    labels = Labels(page_language(request))
    state = getattr(request.state, "web_session", None)
    flash = _take_flash(request, labels)
    response = render_page(request, template, {"sl": labels, "flash": flash,
                                               "csrf": state.csrf_token if state else "", **context},
                           status_code=status_code)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def is_staff(actor: Actor) -> bool:
    """Staff book for patients (the window, the phone line); residents for themselves."""
    return actor.can(Perm.APPOINTMENT_BOOK)


def home_org(actor: Actor) -> int | None:
    return actor.extra.get("org_id")


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None


def parse_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 2**31 else None


def booked_notice(request: Request, appt: Any) -> dict[str, str]:
    """The time and place of a booked appointment, for its notice (no personal data)."""
    when = appt.starts_at.astimezone(request.app.state.web.zone).strftime("%Y-%m-%d %H:%M")
    where = " ".join(x for x in (appt.org_name, appt.department_name, appt.practitioner_name) if x)
    return {"when": when, "where": where}


def local_day(request: Request, at: datetime) -> date:
    return at.astimezone(request.app.state.web.zone).date()


def today(request: Request) -> date:
    return local_day(request, datetime.now(request.app.state.web.zone))


@dataclass(frozen=True)
class ErrorView:
    code: str
    text: str  # the catalogue's explanation in the page's language, else the coded message
    message: str  # the coded message itself: which field, what was expected
    field: str | None
    status: int


def error_view(request: Request, exc: HealthGridError) -> ErrorView:
    field = exc.detail.get("field") if isinstance(exc.detail, dict) else None
    return ErrorView(exc.code, error_text(page_language(request), exc), exc.message, field, exc.status)


def find_patients(session: Any, actor: Actor, name: str, rid: str) -> tuple[list[Any] | None, Any]:
    """Staff pick a patient by name or resident ID (the patient index's audited search):
    (summaries, None), ([], the refusal), or (None, None) before anything is typed."""
    from ...patients import service as patients

    if not (name.strip() or rid.strip()):
        return None, None
    query = patients.PatientQuery(name=name.strip() or None, identifier_kind="resident_id" if rid.strip() else None,
                                  identifier=rid.strip() or None)
    try:
        return patients.search_patients(session, actor, query, limit=20).items, None
    except HealthGridError as exc:
        return [], exc
