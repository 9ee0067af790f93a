"""What every referral page shares: codes as text in the page's language, the desks (the
organisations) the user works for, coded errors and notices carried to the next page
(post/redirect/get with a short-lived cookie holding a message key and its parameters,
never personal data), rendering, small parsers, and the pages' own stylesheet and script
(served by the app: hospital intranets are offline and the CSP allows only this host)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ...errors import NotFound
from ...patients.domain import SEX_LABELS
from ...registry import queries as registry_queries
from ...security.domain import Actor, Perm, ScopeKind
from ...web import page_language, pick
from ...web import render as render_page
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import Notices
from .. import criteria
from .. import domain as d
from ..web_messages import ATTACHMENT_LABELS, INSURANCE_LABELS

NOTICES = Notices("hg_ref_flash", paths=("/referrals",), prefixes=("ref.flash.",), cookie_path="/referrals")
redirect, fail = NOTICES.redirect, NOTICES.fail
assets = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Labels:
    """Codes of referral as text in the page's language; an unknown code shows as itself."""

    lang: str

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def status(self, code: str) -> str:
        return pick(d.STATUS_LABELS.get(code), self.lang, code)

    def direction(self, code: str) -> str:
        return pick(d.DIRECTION_LABELS.get(code), self.lang, code)

    def urgency(self, code: str) -> str:
        return pick(d.URGENCY_LABELS.get(code), self.lang, code)

    def insurance(self, code: str | None) -> str:
        return pick(INSURANCE_LABELS.get(code or ""), self.lang, code or "")

    def attachment(self, code: str) -> str:
        return pick(ATTACHMENT_LABELS.get(code), self.lang, code)

    def red_flag(self, code: str) -> str:
        return pick(criteria.RED_FLAGS.get(code), self.lang, code)

    def sex(self, code: str | None) -> str:
        return pick(SEX_LABELS.get(code or ""), self.lang, code or "")

    def finding(self, f: dict[str, Any]) -> str:
        return f.get("en" if self.lang == "en" else "zh") or f.get("rule", "")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    labels = Labels(page_language(request))
    state = getattr(request.state, "web_session", None)
    flash = NOTICES.take(request, labels.msg)
    response = render_page(request, template, {"rl": labels, "flash": flash,
                                               "csrf": state.csrf_token if state else "", **context},
                           status_code=status_code)
    if flash is not None:
        NOTICES.clear(response)
    return response


# -- the user's desks ------------------------------------------------------------------------------

def desk_orgs(actor: Actor) -> list[int]:
    """The organisations whose referral desk the user staffs: their organisation grants that
    carry referral work, else the organisation their account belongs to."""
    found = [g.scope_id for g in actor.grants_with(Perm.REFERRAL_WRITE)
             if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id]
    home = actor.extra.get("org_id")
    if not found and home and actor.can(Perm.REFERRAL_WRITE):
        found = [home]
    return list(dict.fromkeys(found))


def desk_choice(session: Session, actor: Actor, wanted: int | None) -> tuple[int | None, list[tuple[int, str]]]:
    """The desk shown (the one asked for if it is the user's, else their first) and every
    desk of the user with its name, for the picker."""
    orgs = desk_orgs(actor)
    names = registry_queries.names_of(session, orgs=orgs)["org"] if orgs else {}
    chosen = wanted if wanted in orgs else (orgs[0] if orgs else None)
    return chosen, [(o, names.get(o, str(o))) for o in orgs]


def parse_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 2**31 else None


def parse_version(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and int(value) < 2**31 else None


# -- the pages' stylesheet and script ----------------------------------------------------------------

STATIC = Path(__file__).parent.parent / "static"  # shipped as package data
ASSET_FILES = {"referrals.css": "text/css; charset=utf-8", "referrals.js": "text/javascript; charset=utf-8"}


@assets.get("/referrals/assets/{name}")
def asset(name: str) -> Response:
    """referrals.css (the desk, the form, the A4 print view) and referrals.js (the form's
    refresh on choosing a hospital or department, the print button); nothing else."""
    if name not in ASSET_FILES:
        raise NotFound("HG-404", f"no asset {name!r}")
    return Response((STATIC / name).read_bytes(), media_type=ASSET_FILES[name],
                    headers={"Cache-Control": "public, max-age=3600"})
