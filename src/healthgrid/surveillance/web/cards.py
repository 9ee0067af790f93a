"""Web pages of the report card (传染病报告卡): the card form laid out like the 2019 national
card (患者信息, 临床信息, 报告信息, and the 附卡 of AIDS/HIV or HFMD when the disease needs
one), opened empty or prefilled in one click from a diagnosis (``?patient_id=&icd10=&source=``);
the lists (待审核, 审核超时, 迟报, 已退回, 全部) with filters by disease, county and date; one
card with its history and the reader's actions (the CDC reviews; the reporter corrects and
deletes); the correction form.

Each handler parses, makes one call into ``reporting`` and renders; access, rules and the
audit are the service's. A refused form comes back with what was typed and every problem
beside its field (what the form could not read and the card's own problems together). Works
without JavaScript: "刷新表单" re-renders the form for another disease. The form's parsing
and choices are in ``card_form``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ...errors import HealthGridError
from ...http import SessionDep
from ...registry import queries as registry_queries
from ...security.domain import Actor, Perm, ScopeKind
from ...security.http import ActorDep, require
from ...web import NavItem, add_messages, add_nav_item, page_language, pick
from ...web import render as render_page
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import Notices, error_view
from .. import card_fields as cf
from .. import card_supplement as supp
from .. import reporting
from ..card_queries import CST, EVENT_KINDS, STATUSES, CardView
from ..catalogue import CASE_CLASSES, load_catalogue
from ..web_messages_cards import MESSAGES
from . import card_form as cform

add_messages(MESSAGES)
add_nav_item(NavItem("surv.nav.cards", "/surveillance/cards", order=70, perm=Perm.CASE_REPORT))

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Perm.CASE_REPORT))])
NOTICES = Notices("hg_surv_card_flash", paths=("/surveillance/cards",), prefixes=("surv.card.flash.",),
                  cookie_path="/surveillance/cards")
Param = Annotated[str, Query(max_length=20)]
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Small = Annotated[str, Form(max_length=12)]
Note = Annotated[str, Form(max_length=1000)]
TABS = ("queue", "review_overdue", "late", "returned", "all")
PAGE_SIZE = 25


@dataclass(frozen=True)
class Labels:
    """Codes of the card as text in the page's language."""

    lang: str

    def disease(self, code: str | None, on: date | None = None) -> str:
        cat = load_catalogue()
        found = (cat.find(code or "", on) if on else None) or next(iter(cat.versions(code or "")), None)
        return pick((found.zh, found.en), self.lang) if found else (code or "")

    def subtype(self, disease: str | None, code: str | None) -> str:
        found = next(iter(load_catalogue().versions(disease or "")), None)
        sub = found.subtype(code) if found and code else None
        return pick((sub.zh, sub.en), self.lang) if sub else (code or "")

    def status(self, code: str) -> str:
        return pick(STATUSES.get(code), self.lang, code)

    def event(self, code: str) -> str:
        return pick(EVENT_KINDS.get(code), self.lang, code)

    def table(self, name: str, code: Any) -> str:
        tables = {"sex": cf.SEXES, "id_type": cf.ID_TYPES, "population_group": cf.POPULATION_GROUPS,
                  "case_class": CASE_CLASSES, "case_class2": cf.CASE_CLASSES_2, "delete_type": cf.DELETE_TYPES,
                  "belongs_to": cf.BELONGS_TO}
        return dict(cform.choices(tables[name], self.lang)).get(str(code), str(code or ""))

    def supplement(self, kind: str, item: str, value: Any) -> str:
        spec = next((i for i in supp.SUPPLEMENT.get(kind, ()) if i[0] == item), None)
        table = spec[2] if spec else None
        values = value if isinstance(value, list) else [value]
        return "、".join(pick(table.get(v), self.lang, str(v)) if table else str(v) for v in values)

    def field(self, name: str) -> str:
        """A field's label; ``supplementary.<item>`` is an item of a 附卡."""
        if name.startswith("supplementary."):
            item = name.split(".", 1)[1]
            spec = next((i for items in supp.SUPPLEMENT.values() for i in items if i[0] == item), None)
            return pick(spec[4], self.lang) if spec else item
        return CATALOGUE.get(f"surv.card.f.{name}", self.lang) if f"surv.card.f.{name}" in CATALOGUE else name


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = page_language(request)
    flash = NOTICES.take(request, lambda key, **p: CATALOGUE.get(key, lang, **p))
    state = getattr(request.state, "web_session", None)
    response = render_page(request, template, {"sl": Labels(lang), "flash": flash, "csrf": state.csrf_token
                                               if state else "", "supp_items": supp.SUPPLEMENT, **context},
                           status_code=status_code)
    if flash is not None:
        NOTICES.clear(response)
    return response


def report_orgs(session: Session, actor: Actor) -> list[tuple[int, str]]:
    """The organisations the user reports from: their organisation grants carrying case
    reporting, else the organisation their account belongs to (a CDC's own)."""
    found = [g.scope_id for g in actor.grants_with(Perm.CASE_REPORT)
             if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id]
    home = actor.extra.get("org_id")
    if not found and home:
        found = [home]
    names = registry_queries.names_of(session, orgs=found)["org"] if found else {}
    return [(o, names.get(o, str(o))) for o in dict.fromkeys(found)]


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 2**31 else None


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


# -- the lists ---------------------------------------------------------------------------------------

def _query(tab: str, disease: str, county: str, since: str, until: str) -> reporting.CardQuery:
    base = {"queue": {"status": ["reported"]}, "review_overdue": {"overdue": "review"}, "late": {"overdue": "report"},
            "returned": {"status": ["returned"]}, "all": {}}[tab]
    return reporting.CardQuery(**base, disease=disease.strip() or None,
                               county_code=county.strip() if county.strip().isdigit() and len(county.strip()) == 6
                               else None, since=_day(since), until=_day(until))


@router.get("/surveillance/cards", response_class=HTMLResponse)
def card_list(request: Request, session: SessionDep, actor: ActorDep, tab: Param = "", disease: Param = "",
              county: Param = "", since: Param = "", until: Param = "", page: Param = "1") -> HTMLResponse:
    tab = tab if tab in TABS else ("queue" if actor.can(Perm.CASE_REVIEW) else "all")
    number = _int(page) or 1
    rows, more, error = [], False, None
    now = datetime.now(UTC)
    try:
        found = reporting.search_cards(session, actor, _query(tab, disease, county, since, until),
                                       offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1, now=now)
        rows, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    except HealthGridError as exc:
        error = error_view(request, exc)
    lang = page_language(request)
    return _render(request, "surveillance/card_list.html", error.status if error else 200, tab=tab, tabs=TABS,
                   rows=rows, more=more, page=number, error=error, now_at=now,
                   filters={"disease": disease, "county": county, "since": since, "until": until},
                   diseases=cform.diseases(load_catalogue(), now.astimezone(CST).date(), lang))


# -- the form ------------------------------------------------------------------------------------

def _form_page(request: Request, session: Session, actor: Actor, *, values: dict[str, Any], mode: str = "new",
               problems: list | None = None, error: Any = None, card: CardView | None = None,
               prefilled: bool = False, duplicate: dict | None = None) -> HTMLResponse:
    lang = page_language(request)
    today = datetime.now(CST).date()
    cat = load_catalogue()
    disease = cat.find(values.get("disease") or "", today)
    status = error.status if error is not None else (422 if problems else 200)
    return _render(request, "surveillance/card_form.html", status, v=values, mode=mode, card=card,
                   orgs=report_orgs(session, actor) if mode == "new" else [], error=error, duplicate=duplicate,
                   problems=problems or [], by_field=cform.problems_by_field(problems or [], lang),
                   supplement=disease.supplementary_card if disease else None, prefilled=prefilled,
                   diseases=cform.diseases(cat, today, lang), subtypes=cform.subtypes(cat, today, lang),
                   options=cform.select_options(lang), supp_kinds=supp.SUPPLEMENT)


@router.get("/surveillance/cards/new", response_class=HTMLResponse)
def new_card(request: Request, session: SessionDep, actor: ActorDep, patient_id: Param = "", icd10: Param = "",
             source: Annotated[str, Query(max_length=70)] = "", org: Param = "") -> HTMLResponse:
    """The empty card, or — from a diagnosis (the one click) — the card prefilled."""
    orgs = report_orgs(session, actor)
    chosen = _int(org) if _int(org) in {o for o, _ in orgs} else (orgs[0][0] if orgs else None)
    base = {"key": secrets.token_urlsafe(18), "org": str(chosen or ""), "patient_id": str(_int(patient_id) or ""),
            "icd10": icd10.strip(), "source": source.strip(), "version": "", "reason": ""}
    card, error = None, None
    if _int(patient_id) and icd10.strip() and chosen:
        try:
            card = reporting.card_prefill(session, actor, patient_id=_int(patient_id), icd10=icd10, org_id=chosen)
        except HealthGridError as exc:
            error = error_view(request, exc)
    values = {**cform.form_values(card), **base}
    return _form_page(request, session, actor, values=values, error=error, prefilled=card is not None)


def _checked(session: Session, actor: Actor, form: cform.CardForm, org_id: int) -> tuple[Any, list]:
    """The parsed form and, if it has fields it could not read, all its problems at once."""
    kind = _supplement_kind(form.disease)
    parsed = cform.parse_form(form, kind)
    if not parsed.problems:
        return parsed, []
    problems = reporting.card_problems(session, actor, parsed.card, report_org_id=org_id,
                                       supplementary=parsed.supplementary)
    unread = {p.field for p in parsed.problems}
    return parsed, parsed.problems + [p for p in problems if p.field not in unread]


def _supplement_kind(disease: str) -> str | None:
    found = load_catalogue().find(disease.strip(), datetime.now(CST).date())
    return found.supplementary_card if found else None


@router.post("/surveillance/cards/new", response_class=HTMLResponse)
def post_card(request: Request, session: SessionDep, actor: ActorDep,
              form: Annotated[cform.CardForm, Form()]) -> Response:
    values = cform.posted_values(form)
    org_id = _int(form.org)
    if form.action != "submit" or org_id is None:
        return _form_page(request, session, actor, values=values)
    try:
        parsed, problems = _checked(session, actor, form, org_id)
        if problems:
            return _form_page(request, session, actor, values=values, problems=problems)
        made = reporting.report_card(
            session, actor, parsed.card, report_org_id=org_id, patient_id=_int(form.patient_id),
            source=form.source or None, icd10=form.icd10 or None, supplementary=parsed.supplementary,
            new_episode=form.new_episode == "1", idempotency_key=form.key or None)
    except HealthGridError as exc:
        return _refused(request, session, actor, values, exc)
    return NOTICES.redirect(request, f"/surveillance/cards/{made.id}", m="surv.card.flash.reported",
                            number=made.card_number)


def _refused(request: Request, session: Session, actor: Actor, values: dict[str, Any], exc: HealthGridError,
             *, mode: str = "new", card: CardView | None = None) -> HTMLResponse:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    problems = [cf.Problem(p["code"], p["field"], p["zh"], p["en"]) for p in detail.get("problems") or []]
    if problems:
        return _form_page(request, session, actor, values=values, mode=mode, card=card, problems=problems)
    duplicate = {"id": detail["card_id"], "number": detail["card_number"]} if exc.code == "SURV-302" else None
    return _form_page(request, session, actor, values=values, mode=mode, card=card, error=error_view(request, exc),
                      duplicate=duplicate, problems=[cf.Problem(exc.code, detail["field"], exc.message, exc.message)]
                      if detail.get("field") and duplicate is None else None)


# -- one card ------------------------------------------------------------------------------------

@router.get("/surveillance/cards/{card_id}", response_class=HTMLResponse)
def card_page(request: Request, session: SessionDep, actor: ActorDep, card_id: RowId) -> HTMLResponse:
    view = reporting.get_card(session, actor, card_id)
    return _render(request, "surveillance/card_detail.html", c=view, now_at=datetime.now(UTC),
                   delete_types=cform.choices(cf.DELETE_TYPES, page_language(request)))


def _back(request: Request, card_id: int, call) -> Response:  # noqa: ANN001 - a service call
    try:
        view, key = call()
    except HealthGridError as exc:
        return NOTICES.fail(request, f"/surveillance/cards/{card_id}", exc)
    return NOTICES.redirect(request, f"/surveillance/cards/{view.id}", m=f"surv.card.flash.{key}",
                            number=view.card_number)


@router.post("/surveillance/cards/{card_id}/review")
def review(request: Request, session: SessionDep, actor: ActorDep, card_id: RowId, version: Small = "",
           decision: Small = "", note: Note = "") -> Response:
    def call():
        view = reporting.review_card(session, actor, card_id, decision=decision, note=note or None,
                                     expected_version=_int(version))
        return view, "reviewed" if view.status == "reviewed" else "returned"
    return _back(request, card_id, call)


@router.post("/surveillance/cards/{card_id}/delete")
def delete(request: Request, session: SessionDep, actor: ActorDep, card_id: RowId, version: Small = "",
           delete_type: Annotated[str, Form(max_length=20)] = "", reason: Note = "") -> Response:
    return _back(request, card_id, lambda: (reporting.delete_card(
        session, actor, card_id, delete_type=delete_type, reason=reason, expected_version=_int(version)), "deleted"))


@router.get("/surveillance/cards/{card_id}/correct", response_class=HTMLResponse)
def correction_form(request: Request, session: SessionDep, actor: ActorDep, card_id: RowId) -> HTMLResponse:
    view = reporting.get_card(session, actor, card_id)
    values = {**cform.form_values(view.card, view.supplementary), "version": str(view.version), "reason": ""}
    return _form_page(request, session, actor, values=values, mode="correct", card=view)


@router.post("/surveillance/cards/{card_id}/correct", response_class=HTMLResponse)
def post_correction(request: Request, session: SessionDep, actor: ActorDep, card_id: RowId,
                    form: Annotated[cform.CardForm, Form()]) -> Response:
    """Only what differs from the card as shown is sent as a change (a masked ID number left
    as shown is no change)."""
    view = reporting.get_card(session, actor, card_id)
    values = cform.posted_values(form)
    if form.action != "submit":
        return _form_page(request, session, actor, values=values, mode="correct", card=view)
    parsed = cform.parse_form(form, _supplement_kind(form.disease))
    if parsed.problems:
        return _form_page(request, session, actor, values=values, mode="correct", card=view, problems=parsed.problems)
    changes = {k: getattr(parsed.card, k) for k in reporting.CORRECTABLE
               if getattr(parsed.card, k) != getattr(view.card, k) and k != "supplementary_card"}
    try:
        done = reporting.correct_card(session, actor, card_id, changes=changes, reason=form.reason,
                                      supplementary=parsed.supplementary, expected_version=_int(form.version))
    except HealthGridError as exc:
        return _refused(request, session, actor, values, exc, mode="correct", card=view)
    return NOTICES.redirect(request, f"/surveillance/cards/{done.id}", m="surv.card.flash.corrected",
                            number=done.card_number)
