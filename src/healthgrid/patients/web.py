"""Web pages of the master patient index: find a resident, register one, read a record
(demographics, identifiers, next of kin, merges and the timeline across the region), break
the glass when there is no care relationship, and the steward's match review queue with
its side-by-side comparison, merge and unmerge.

Each handler parses its form, makes the service calls and renders; permissions, scope,
masking and the audit are the service's. Coded errors of a form are shown next to it (and
nothing is written); after a write the browser is redirected (post/redirect/get) and the
next page shows a one-time notice carried by a short-lived cookie. Reading a record
without a relationship raises SEC-104: a clinician gets a form asking the reason, and the
read is then repeated as the same user with the glass broken (audited, flagged for review)
— the reason holds for that one page, as the API's ``X-Break-Glass-Reason`` header does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ..errors import Conflict, Forbidden, HealthGridError, Invalid, NotFound
from ..http import SessionDep
from ..registry import queries as registry_queries
from ..security.domain import Actor, Perm, ScopeKind
from ..security.http import ActorDep, require
from ..web import NavItem, Pager, add_messages, add_nav_item, page_language, pick
from ..web import render as render_page
from ..web.i18n import MESSAGES as CATALOGUE
from . import domain as d
from . import merging, service
from .web_messages import MESSAGES

TEMPLATES = Path(__file__).parent / "templates"
router = APIRouter(prefix="/patients", include_in_schema=False)

RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
FLASH_COOKIE = "hg_flash"
REVIEW_STATUSES = ("open", "merged", "distinct")
# The comparison levels of matching (domain.compare_levels) as the steward reads them.
LEVEL_VERDICT = {"same": "agree", "exact": "agree", "same_village": "agree",
                 "same_pinyin": "partly", "similar": "partly", "day_month_swapped": "partly", "close": "partly",
                 "same_township": "partly", "different": "disagree", "null": "missing"}
COMPARED_FIELDS = ("name", "sex", "birth_date", "resident_id", "phone", "address")
# A form field of a coded error (the service's ``detail["field"]``) -> the page's input.
FORM_FIELDS = {"kin[0].name": "kin_name", "kin[0].phone": "kin_phone", "kin[0].relationship": "kin_relationship",
               "division_id": "division_code", "identifier": "identifier"}


# -- labels, errors, notices ----------------------------------------------------------------------

@dataclass(frozen=True)
class Labels:
    """Codes of the index as text in the page's language; an unknown code shows as itself."""

    lang: str

    def sex(self, code: str | None) -> str:
        return pick(d.SEX_LABELS.get(code or ""), self.lang, code or "—")

    def identifier(self, kind: str) -> str:
        return pick(d.IDENTIFIER_LABELS.get(kind), self.lang, kind)

    def kin(self, relationship: str) -> str:
        return pick(d.KIN_RELATIONSHIPS.get(relationship), self.lang, relationship)

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def known(self, key: str) -> bool:
        return key in CATALOGUE

    def level(self, level: str) -> str:
        key = f"patients.level.{level}"
        return self.msg(key) if key in CATALOGUE else level

    def matched_by(self, by: str | None, probability: str | None = None) -> str:
        if by == "probabilistic":
            return self.msg("patients.matched.probabilistic", p=probability or "?")
        return self.identifier(by or "")

    def timeline(self, entry: Any, orgs: dict[int, str]) -> str:
        org = orgs.get(entry.org_id or 0, "")
        key = f"patients.timeline.{entry.kind}.text"
        if key not in CATALOGUE:
            return org
        detail = entry.detail or {}
        return self.msg(key, org=org or self.msg("patients.unknown_org"), record=entry.patient_id,
                        kind=self.identifier(str(detail.get("kind", ""))),
                        loser=detail.get("loser_id", ""), survivor=detail.get("survivor_id", ""),
                        by=detail.get("by", ""), reason=detail.get("reason", ""))

    def timeline_kind(self, kind: str) -> str:
        key = f"patients.timeline.{kind}"
        return self.msg(key) if key in CATALOGUE else kind


@dataclass(frozen=True)
class ErrorView:
    code: str
    text: str  # the catalogue's explanation in the page's language, else the coded message
    message: str  # the coded message itself: which field, what was expected
    field: str | None
    status: int


def _error(request: Request, exc: HealthGridError) -> ErrorView:
    key = f"error.{exc.code}"
    # HG-422 here is this module's own parse error, whose message is already the page's text.
    known = key in CATALOGUE and exc.code != "HG-422"
    text = CATALOGUE.get(key, page_language(request)) if known else exc.message
    field = exc.detail.get("field") if isinstance(exc.detail, dict) else None
    if field is None and exc.code.startswith("SEC-03"):
        field = "resident_id"  # the ID number's own checks (security.domain.parse_resident_id)
    return ErrorView(exc.code, text, exc.message, FORM_FIELDS.get(field, field) if field else None, exc.status)


def _bad_input(request: Request, key: str, field: str) -> ErrorView:
    text = CATALOGUE.get(key, page_language(request))
    return ErrorView("HG-422", text, text, field, 422)


@dataclass(frozen=True)
class Flash:
    kind: str  # ok | error
    text: str
    code: str | None = None
    href: str | None = None
    link: str | None = None


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.security.cookie_secure
    return setting == "always" or (setting == "auto" and request.url.scheme == "https")


def _redirect(request: Request, url: str, **flash: object) -> RedirectResponse:
    """Post/redirect/get with a one-time notice for the next page (a short-lived cookie
    holding a message key and its parameters — never personal data)."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, urlencode({k: str(v) for k, v in flash.items()}), max_age=120,
                            httponly=True, samesite="lax", secure=_secure(request), path="/patients")
    return response


def _take_flash(request: Request, labels: Labels) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    data = dict(parse_qsl(raw))
    key = data.pop("m", "")
    if data.pop("k", "") == "error":
        code = data.get("code", "")
        known = f"error.{code}"
        return Flash("error", labels.msg(known) if known in CATALOGUE else data.get("text", code), code)
    if not key.startswith("patients.flash.") or key not in CATALOGUE:
        return None
    if "by" in data:
        data["by"] = labels.matched_by(data["by"], data.pop("p", None))
    href = data.pop("href", None)
    href = href if href and href.startswith("/patients/") else None
    try:
        text = labels.msg(key, **data)
    except (KeyError, IndexError):
        return None
    return Flash("ok", text, None, href, labels.msg("patients.flash.open") if href else None)


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    labels = Labels(page_language(request))
    state = getattr(request.state, "web_session", None)
    response = render_page(request, template, {"pl": labels, "flash": _take_flash(request, labels),
                                               "csrf": state.csrf_token if state else "", **context},
                           status_code=status_code)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/patients")
    return response


def _org_names(session: Session, ids: set[int]) -> dict[int, str]:
    wanted = sorted(i for i in ids if i)
    if not wanted:
        return {}
    found = registry_queries.search_organizations(session, registry_queries.OrgFilter(ids=wanted),
                                                  limit=len(wanted))
    return {org.id: org.name for org in found.items}


def _parse_date(request: Request, value: str, field: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid("HG-422", CATALOGUE.get("patients.bad_date", page_language(request)), {"field": field}) \
            from None


def _more_pager(page: int, total: int) -> Pager:
    """The services count one row past the page ("there is more") instead of the whole
    listing; the pager shows previous / next without a total."""
    return Pager(page).with_total(total)


# -- search -------------------------------------------------------------------------------------

def _search_query(request: Request, form: dict[str, str]) -> service.PatientQuery:
    """Parse the search form; an identifier is checked here so that a mistyped number gets
    its reason (the service treats a malformed number as one nobody holds)."""
    kind = form["kind"] or d.IdentifierKind.RESIDENT_ID.value
    identifier = form["identifier"].strip()
    if identifier:
        if kind not in set(d.IdentifierKind):
            raise Invalid("HG-422", CATALOGUE.get("patients.bad_kind", page_language(request)), {"field": "kind"})
        try:
            d.normalise_identifier(d.IdentifierKind(kind), identifier, today=date.today(), field_name="identifier")
        except Invalid as exc:  # shown at the search form's one number field, whatever its kind
            raise Invalid(exc.code, exc.message, {"field": "identifier"}) from None
    return service.PatientQuery(identifier_kind=kind if identifier else None, identifier=identifier or None,
                                name=form["name"].strip() or None,
                                birth_date=_parse_date(request, form["birth_date"], "birth_date"),
                                sex=form["sex"] or None, phone=form["phone"].strip() or None)


@router.get("", response_class=HTMLResponse, dependencies=[Depends(require(Perm.PATIENT_READ))])
def search(request: Request, session: SessionDep, actor: ActorDep,
           kind: Annotated[str, Query(max_length=20)] = "resident_id",
           identifier: Annotated[str, Query(max_length=64)] = "", name: Annotated[str, Query(max_length=60)] = "",
           birth_date: Annotated[str, Query(max_length=10)] = "", sex: Annotated[str, Query(max_length=8)] = "",
           phone: Annotated[str, Query(max_length=20)] = "", page: PageNo = 1) -> HTMLResponse:
    form = {"kind": kind, "identifier": identifier, "name": name, "birth_date": birth_date, "sex": sex,
            "phone": phone}
    pager, found, error = Pager(page), None, None
    if any(v.strip() for k, v in form.items() if k != "kind"):
        try:
            found = service.search_patients(session, actor, _search_query(request, form), offset=pager.offset,
                                            limit=pager.size)
        except Invalid as exc:
            error = _error(request, exc)
    return _render(request, "patients/search.html", 422 if error else 200, form=form, error=error,
                   results=found.items if found else None, pager=_more_pager(page, found.total if found else 0),
                   kinds=list(d.IdentifierKind), sexes=list(d.SEX_LABELS),
                   can_register=actor.can(Perm.PATIENT_WRITE), masked=not actor.can(Perm.PII_UNMASKED))


# -- registration -------------------------------------------------------------------------------

class RegistrationForm(BaseModel):
    org_id: str = Field("", max_length=12)
    name: str = Field("", max_length=60)
    name_pinyin: str = Field("", max_length=200)
    sex: str = Field("", max_length=8)
    birth_date: str = Field("", max_length=10)
    resident_id: str = Field("", max_length=20)
    health_card: str = Field("", max_length=64)
    insurance: str = Field("", max_length=32)
    mrn: str = Field("", max_length=40)
    phone: str = Field("", max_length=20)
    division_code: str = Field("", max_length=12)
    address_line: str = Field("", max_length=200)
    kin_name: str = Field("", max_length=60)
    kin_relationship: str = Field("other", max_length=20)
    kin_phone: str = Field("", max_length=20)


def _registering_orgs(session: Session, actor: Actor) -> list[tuple[int, str]]:
    """Where this user registers residents: the facilities of their organisation-scope
    grants carrying ``patient.write``, their home organisation first (a user scoped to a
    division registers at their home organisation, if they have one)."""
    grants = actor.grants_with(Perm.PATIENT_WRITE)
    ids = [g.scope_id for g in grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id]
    home = actor.extra.get("org_id")
    if home and grants:
        ids.insert(0, home)
    ids = list(dict.fromkeys(ids))
    names = _org_names(session, set(ids))
    return [(i, names[i]) for i in ids if i in names]


def _patient_in(session: Session, request: Request, form: RegistrationForm) -> service.PatientIn:
    division_id = None
    if form.division_code.strip():
        try:
            division_id = registry_queries.division_by_code(session, form.division_code.strip()).id
        except NotFound as exc:
            raise Invalid(exc.code, exc.message, {"field": "division_code"}) from None
    kin = []
    if form.kin_name.strip() or form.kin_phone.strip():
        kin = [service.KinIn(form.kin_name, form.kin_relationship or "other", form.kin_phone.strip() or None)]
    return service.PatientIn(
        name=form.name, name_pinyin=form.name_pinyin.strip() or None, sex=form.sex or None,
        birth_date=_parse_date(request, form.birth_date, "birth_date"),
        resident_id=form.resident_id.strip() or None, health_card=form.health_card.strip() or None,
        insurance=form.insurance.strip() or None, mrn=form.mrn.strip() or None, phone=form.phone.strip() or None,
        division_id=division_id, address_line=form.address_line.strip() or None, kin=kin)


def _new_page(request: Request, orgs: list[tuple[int, str]], form: RegistrationForm,
              error: ErrorView | None = None) -> HTMLResponse:
    return _render(request, "patients/new.html", error.status if error else 200, orgs=orgs, form=form,
                   org_options=[(str(i), name) for i, name in orgs], error=error, sexes=list(d.SEX_LABELS),
                   relationships=list(d.KIN_RELATIONSHIPS))


@router.get("/new", response_class=HTMLResponse, dependencies=[Depends(require(Perm.PATIENT_WRITE))])
def new_form(request: Request, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    return _new_page(request, _registering_orgs(session, actor), RegistrationForm())


@router.post("/new", response_class=HTMLResponse, dependencies=[Depends(require(Perm.PATIENT_WRITE))])
def register(request: Request, session: SessionDep, actor: ActorDep,
             form: Annotated[RegistrationForm, Form()]) -> Response:
    orgs = _registering_orgs(session, actor)
    org_id = next((i for i, _ in orgs if str(i) == form.org_id), orgs[0][0] if len(orgs) == 1 else None)
    if org_id is None:
        return _new_page(request, orgs, form, _bad_input(request, "patients.new.choose_org", "org_id"))
    try:
        reg = service.register_patient(session, actor, org_id=org_id, data=_patient_in(session, request, form))
    except (Invalid, Conflict, Forbidden) as exc:
        return _new_page(request, orgs, form, _error(request, exc))
    flash: dict[str, object] = {"m": f"patients.flash.{reg.outcome}", "id": reg.patient.id}
    if reg.outcome == "linked":
        flash |= {"by": reg.matched_by or "", "p": f"{(reg.probability or 0) * 100:.1f}%"}
    elif reg.outcome == "review":
        flash["n"] = len(reg.reviews)
    return _redirect(request, f"/patients/{reg.patient.id}", **flash)


# -- the review queue (declared before /{patient_id}) --------------------------------------------

@router.get("/reviews", response_class=HTMLResponse)
def reviews(request: Request, session: SessionDep, actor: ActorDep,
            status: Annotated[str, Query(max_length=10)] = "open", page: PageNo = 1) -> HTMLResponse:
    status = status if status in REVIEW_STATUSES else "open"
    pager = Pager(page)
    total, rows = merging.list_reviews(session, actor, status=status, offset=pager.offset, limit=pager.size)
    return _render(request, "patients/reviews.html", rows=rows, status=status, statuses=REVIEW_STATUSES,
                   pager=_more_pager(page, total))


def _compared(labels: Labels, view: merging.ReviewView, orgs: dict[int, str]) -> list[dict[str, Any]]:
    """The rows of the side-by-side table: the compared fields with their level and weight,
    then what else each record holds."""
    def value(p: Any, name: str) -> str:
        if name == "sex":
            return labels.sex(p.sex)
        if name == "birth_date":
            return p.birth_date.isoformat() if p.birth_date else ""
        if name == "address":
            return f"{''.join(p.division_path)} {p.address_line or ''}".strip()
        if name in ("resident_id", "health_card", "insurance"):
            return p.identifier(name) or ""
        if name == "mrn":
            mrns = [i for i in p.identifiers if i.kind == "mrn"]
            return "、".join(f"{i.value} ({orgs.get(i.assigner, i.assigner)})" for i in mrns)
        if name == "registered_org":
            return orgs.get(p.registered_org_id or 0, "")
        return str(getattr(p, name) or "")

    rows = []
    for name in COMPARED_FIELDS:
        level = view.levels.get(name, "null")
        rows.append({"field": name, "left": value(view.left, name), "right": value(view.right, name),
                     "level": level, "verdict": LEVEL_VERDICT.get(level, "missing"),
                     "weight": view.weights.get(name)})
    for name in ("name_pinyin", "health_card", "insurance", "mrn", "registered_org"):
        rows.append({"field": name, "left": value(view.left, name), "right": value(view.right, name),
                     "level": None, "verdict": None, "weight": None})
    return rows


def _review_page(request: Request, session: Session, view: merging.ReviewView, *, error: ErrorView | None = None,
                 form: dict[str, str] | None = None) -> HTMLResponse:
    orgs = _org_names(session, {p.registered_org_id or 0 for p in (view.left, view.right)}
                      | {i.assigner for p in (view.left, view.right) for i in p.identifiers})
    labels = Labels(page_language(request))
    older = min(view.left.id, view.right.id)
    return _render(request, "patients/review.html", error.status if error else 200, review=view,
                   rows=_compared(labels, view, orgs), error=error,
                   form=form or {"decision": "", "survivor_id": str(older), "note": ""})


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
def review(request: Request, session: SessionDep, actor: ActorDep, review_id: RowId) -> HTMLResponse:
    return _review_page(request, session, merging.get_review(session, actor, review_id))


@router.post("/reviews/{review_id}", response_class=HTMLResponse)
def decide(request: Request, session: SessionDep, actor: ActorDep, review_id: RowId,
           decision: Annotated[str, Form(max_length=10)] = "", survivor_id: Annotated[str, Form(max_length=12)] = "",
           note: Annotated[str, Form(max_length=500)] = "") -> Response:
    survivor = int(survivor_id) if survivor_id.isdigit() else None
    try:
        merge_id = merging.decide_review(session, actor, review_id, decision=decision, note=note,
                                         survivor_id=survivor if decision == "merge" else None)
    except (Invalid, Conflict) as exc:
        form = {"decision": decision, "survivor_id": survivor_id, "note": note}
        return _review_page(request, session, merging.get_review(session, actor, review_id),
                            error=_error(request, exc), form=form)
    if merge_id is None:
        return _redirect(request, "/patients/reviews", m="patients.flash.distinct", review=review_id)
    link = {"href": f"/patients/{survivor}"} if survivor else {}
    return _redirect(request, "/patients/reviews", m="patients.flash.merged", review=review_id, **link)


# -- merges -------------------------------------------------------------------------------------

@router.post("/merges/{merge_id}/unmerge")
def unmerge(request: Request, session: SessionDep, actor: ActorDep, merge_id: RowId,
            reason: Annotated[str, Form(max_length=500)] = "",
            back: Annotated[str, Form(max_length=12)] = "") -> Response:
    target = f"/patients/{back}" if back.isdigit() else "/patients/reviews"
    try:
        merging.unmerge_patients(session, actor, merge_id=merge_id, reason=reason)
    except (Invalid, Conflict) as exc:
        return _redirect(request, target, k="error", code=exc.code, text=exc.message[:200])
    return _redirect(request, target, m="patients.flash.unmerged", merge=merge_id)


# -- a patient's record -------------------------------------------------------------------------

def _by_day(request: Request, entries: list[Any]) -> list[tuple[str, list[Any]]]:
    """Timeline entries (newest first) grouped by their local date."""
    zone = request.app.state.web.zone
    days: dict[str, list[Any]] = {}
    for entry in entries:
        at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)  # stored times are UTC
        days.setdefault(at.astimezone(zone).date().isoformat(), []).append(entry)
    return list(days.items())


def _record_page(request: Request, session: Session, actor: Actor, patient_id: int,
                 glass: str | None = None) -> HTMLResponse:
    view = service.get_patient(session, actor, patient_id)
    timeline = service.patient_timeline(session, actor, view.id)
    merges = _merges_or_none(session, actor, view.id)
    orgs = _org_names(session, {view.registered_org_id or 0} | {i.assigner for i in view.identifiers}
                      | {e.org_id or 0 for e in timeline})
    return _render(request, "patients/patient.html", view=view, requested=patient_id, orgs=orgs,
                   days=_by_day(request, timeline), merges=merges, glass=glass)


def _merges_or_none(session: Session, actor: Actor, patient_id: int) -> list[Any] | None:
    """The record's merges for a reader who is also a steward over it; None otherwise."""
    if not actor.can(Perm.PATIENT_MERGE):
        return None
    try:
        return merging.list_merges(session, actor, patient_id)
    except Forbidden:
        return None  # a steward elsewhere: the record is readable, its merges not theirs


def _glass_form(request: Request, patient_id: int, error: ErrorView | None, status: int) -> HTMLResponse:
    minimum = request.app.state.settings.security.break_glass_min_reason
    return _render(request, "patients/break_glass.html", status, patient_id=patient_id, error=error,
                   minimum=minimum)


@router.get("/{patient_id}", response_class=HTMLResponse)
def patient(request: Request, session: SessionDep, actor: ActorDep, patient_id: RowId) -> HTMLResponse:
    if actor.can(Perm.PATIENT_MERGE) and not actor.can(Perm.PATIENT_READ):
        # The steward decides merges but reads no records: the merge history of the record.
        survivor = service.resolve_patient_id(session, patient_id)
        return _render(request, "patients/history.html", patient_id=survivor, requested=patient_id,
                       merges=merging.list_merges(session, actor, survivor))
    try:
        return _record_page(request, session, actor, patient_id)
    except Forbidden as exc:
        if exc.code != "SEC-104" or not actor.can(Perm.BREAK_GLASS):
            raise
        return _glass_form(request, patient_id, None, exc.status)


@router.post("/{patient_id}/break-glass", response_class=HTMLResponse)
def break_glass(request: Request, session: SessionDep, actor: ActorDep, patient_id: RowId,
                reason: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    """The same read with the glass broken: access.check allows it, audits it flagged."""
    glass = dataclasses.replace(actor, break_glass=" ".join(reason.split()))
    try:
        return _record_page(request, session, glass, patient_id, glass=glass.break_glass)
    except Forbidden as exc:
        if exc.code not in ("SEC-104", "SEC-105") or not actor.can(Perm.BREAK_GLASS):
            raise
        error = _error(request, exc)
        if exc.code == "SEC-105":  # the minimum is a setting: say it with its number
            minimum = request.app.state.settings.security.break_glass_min_reason
            text = CATALOGUE.get("patients.glass.too_short", page_language(request), n=minimum)
            error = dataclasses.replace(error, text=text, field="reason")
        return _glass_form(request, patient_id, error, exc.status)


add_messages(MESSAGES)
add_nav_item(NavItem("patients.nav.index", "/patients", order=40, perm=Perm.PATIENT_READ))
add_nav_item(NavItem("patients.nav.reviews", "/patients/reviews", order=45, perm=Perm.PATIENT_MERGE))
