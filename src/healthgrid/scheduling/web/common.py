"""What every scheduling page shares: codes as text in the page's language, coded errors
and notices carried to the next page (post/redirect/get with a short-lived cookie holding a
message key and its parameters, never personal data), rendering, and small parsers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from ...patients import service as patients
from ...patients.domain import KIN_RELATIONSHIPS
from ...security.domain import Actor, Perm
from ...web import page_language, pick
from ...web import render as render_page
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import Notices
from .. import domain as d
from ..web_messages import WEEKDAYS

# Pages whose notices this cookie may carry (the cookie is sent to every path).
FLASH_PATHS = ("/booking", "/appointments", "/account/family", "/scheduling/", "/inbox")
NOTICES = Notices("hg_sched_flash", paths=FLASH_PATHS, prefixes=("sched.flash.", "notif.flash."))
redirect, fail = NOTICES.redirect, NOTICES.fail


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


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    labels = Labels(page_language(request))
    state = getattr(request.state, "web_session", None)
    flash = NOTICES.take(request, labels.msg)
    response = render_page(request, template, {"sl": labels, "flash": flash,
                                               "csrf": state.csrf_token if state else "", **context},
                           status_code=status_code)
    if flash is not None:
        NOTICES.clear(response)
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


def find_patients(session: Any, actor: Actor, name: str, rid: str) -> tuple[list[Any] | None, Any]:
    """Staff pick a patient by name or resident ID (patients.pick_patients)."""
    return patients.pick_patients(session, actor, name=name, resident_id=rid)
