"""Pages of mutual recognition: the ordering doctor's ``/results/order`` (find the patient,
pick the test, see the prior results that must be recognised — with the HR mark, where, when,
values and validity — and why the others are not, then recognise one or repeat with a reason
and "patient informed"; the saved decision), and ``/results/measures`` (a facility's own, the
commission's divisions; a period of months; inline SVG, no script). Each handler parses,
calls ``ordering`` / ``measures`` and renders; the rules, access and audit are theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...errors import HealthGridError, Invalid
from ...http import SessionDep
from ...patients import service as patients
from ...patients.domain import SEX_LABELS
from ...registry import queries as registry_queries
from ...registry.domain import ORG_LEVEL_LABELS
from ...security.domain import Actor, Perm, ScopeKind
from ...security.http import ActorDep, require
from ...web import NavItem, add_messages, add_nav_item, page_language, pick, render
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import Notices, error_view
from .. import measures, ordering
from ..catalogue import load_catalogue
from ..domain import CATEGORIES, CN_TZ, LOCAL_REASONS, NATIONAL_REASONS
from ..reference import catalogue_of
from ..web_messages_recognition import MESSAGES

add_messages(MESSAGES)
add_nav_item(NavItem("res.order.nav", "/results/order", order=64, perm=Perm.RESULT_ORDER))
add_nav_item(NavItem("res.measures.nav", "/results/measures", order=66, perm=Perm.RESULT_STATS))
NOTICES = Notices("hg_res_flash", paths=("/results/order",), prefixes=("res.flash.",), cookie_path="/results/order")
router = APIRouter(include_in_schema=False)
order_pages = APIRouter(dependencies=[Depends(require(Perm.RESULT_ORDER))])
measure_pages = APIRouter(dependencies=[Depends(require(Perm.RESULT_STATS))])
Param = Annotated[str, Query(max_length=60)]


@dataclass(frozen=True)
class Labels:
    """Codes as text in the page's language."""

    lang: str

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def level(self, code: str | None) -> str:
        return pick(ORG_LEVEL_LABELS.get(code or ""), self.lang, code or "")

    def reason(self, code: str | None) -> str:
        pair = {**{str(k): v for k, v in NATIONAL_REASONS.items()},
                **{str(k): v for k, v in LOCAL_REASONS.items()}}.get(code or "")
        return pick(pair, self.lang, code or "")

    def why(self, r: dict[str, Any]) -> str:
        """One reason a prior result is not recognised, with its details."""
        code = r.get("code", "")
        if code == "scope":
            key = f"res.why.scope.{r.get('rule', 'level')}"
            return self.msg(key, issuing=self.level(r.get("issuing_level")),
                            ordering=self.level(r.get("ordering_level")), mark=r.get("mark", ""))
        key = f"res.why.{code}"
        if key not in CATALOGUE:
            return code
        try:
            return self.msg(key, **{k: v for k, v in r.items() if k != "code"})
        except (KeyError, IndexError):
            return self.msg(key, **dict.fromkeys(("catalogue_version", "status", "mark", "year", "age_days",
                                                  "validity_days"), "?"))

    def sex(self, code: str | None) -> str:
        return pick(SEX_LABELS.get(code or ""), self.lang, code or "")

    def item(self, code: str) -> str:
        found = load_catalogue().find(code)
        return (found.en if self.lang == "en" else found.zh) if found else code


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    labels = Labels(page_language(request))
    state = getattr(request.state, "web_session", None)
    flash = NOTICES.take(request, labels.msg)
    response = render(request, template, {"rl": labels, "flash": flash, "csrf": state.csrf_token if state else "",
                                          "tz": CN_TZ, **context}, status_code=status_code)
    if flash is not None:
        NOTICES.clear(response)
    return response


def desks(session: Session, actor: Actor, wanted: int | None) -> tuple[int | None, list[tuple[int, str]]]:
    """The facility the doctor orders for (the one asked for if it is theirs, else their first)
    and all of theirs: organisation grants carrying results.order, else their account's."""
    orgs = [g.scope_id for g in actor.grants_with(Perm.RESULT_ORDER)
            if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id]
    home = actor.extra.get("org_id")
    if not orgs and home and actor.can(Perm.RESULT_ORDER):
        orgs = [home]
    if actor.system and wanted:
        orgs = [wanted]
    orgs = list(dict.fromkeys(orgs))
    names = registry_queries.names_of(session, orgs=orgs)["org"] if orgs else {}
    chosen = wanted if wanted in orgs else (orgs[0] if orgs else None)
    return chosen, [(o, names.get(o, str(o))) for o in orgs]


def parse_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 2**31 else None


def item_groups(session: Session, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalogue's items by category, for the picker."""
    cat = catalogue_of(session)
    out = []
    for category in CATEGORIES:
        items = sorted((i for i in cat.items.values() if i.category == category), key=lambda i: (i.group, i.code))
        if items:
            out.append((f"res.category.{category}", [(i.code, f"{i.en if lang == 'en' else i.zh}（{i.code}）")
                                                     for i in items]))
    return out


# -- the ordering doctor's pages ------------------------------------------------------------------

@order_pages.get("/results/order", response_class=HTMLResponse)
def order_page(request: Request, session: SessionDep, actor: ActorDep, org: Param = "", patient: Param = "",
               item: Param = "", name: Param = "", rid: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    chosen, mine = desks(session, actor, parse_id(org))
    pid, found, search_error, person, refused = parse_id(patient), None, None, None, None
    if pid is not None:
        try:
            person = patients.get_patient(session, actor, pid)
        except HealthGridError as exc:
            refused = error_view(request, exc)
    else:
        found, exc = patients.pick_patients(session, actor, name=name, resident_id=rid)
        search_error = error_view(request, exc) if exc else None
    return _render(request, "results/order_check.html", refused.status if refused else 200, org=chosen, desks=mine,
                   patient=person, found=found, search_error=search_error, error=refused, name=name, rid=rid,
                   item=item, groups=item_groups(session, page_language(request)))


class CheckForm(BaseModel):
    org: str = Field("", max_length=12)
    patient_id: str = Field("", max_length=12)
    item: str = Field("", max_length=40)


@order_pages.post("/results/order", response_class=HTMLResponse)
def check(request: Request, session: SessionDep, actor: ActorDep, form: Annotated[CheckForm, Form()]) -> Response:
    chosen, mine = desks(session, actor, parse_id(form.org))
    pid = parse_id(form.patient_id)
    try:
        if chosen is None or pid is None:
            raise Invalid("RES-120", "choose the facility, the patient and the test", {"field": "item"})
        view = ordering.check_prior_results(session, actor, patient_id=pid, item=form.item.strip(),
                                            ordering_org_id=chosen)
    except HealthGridError as exc:
        person = None
        if pid is not None:
            try:
                person = patients.get_patient(session, actor, pid)
            except HealthGridError:
                person = None
        return _render(request, "results/order_check.html", exc.status, org=chosen, desks=mine, patient=person,
                       found=None, search_error=None, error=error_view(request, exc), name="", rid="",
                       item=form.item, groups=item_groups(session, page_language(request)))
    return NOTICES.redirect(request, f"/results/order/{view.id}")


@order_pages.get("/results/order/{decision_id}", response_class=HTMLResponse)
def decision_page(request: Request, session: SessionDep, actor: ActorDep, decision_id: int) -> HTMLResponse:
    return _decision(request, session, actor, decision_id)


def _decision(request: Request, session: Session, actor: Actor, decision_id: int, error: Any = None,
              form: dict | None = None) -> HTMLResponse:
    if not 0 < decision_id < 2**31:
        decision_id = 2**31 - 1
    try:
        view = ordering.get_decision(session, actor, decision_id)
        person = patients.get_patient(session, actor, view.patient_id)
    except HealthGridError as exc:
        return _render(request, "results/order_decision.html", exc.status, view=None, patient=None,
                       error=error_view(request, exc), reasons=[], form={})
    return _render(request, "results/order_decision.html", error.status if error else 200, view=view,
                   patient=person, error=error, reasons=ordering.repeat_reasons(), form=form or {},
                   recognised=next((c for c in view.candidates if c.report_id == view.recognised_report_id), None))


class AnswerForm(BaseModel):
    action: str = Field("", max_length=10)
    report_id: str = Field("", max_length=12)
    reason: str = Field("", max_length=40)
    text: str = Field("", max_length=2000)
    informed: str = Field("", max_length=4)


@order_pages.post("/results/order/{decision_id}", response_class=HTMLResponse)
def answer(request: Request, session: SessionDep, actor: ActorDep, decision_id: int,
           form: Annotated[AnswerForm, Form()]) -> Response:
    if not 0 < decision_id < 2**31:
        decision_id = 2**31 - 1
    try:
        if form.action == "accept":
            ordering.record_decision(session, actor, decision_id=decision_id, accept=parse_id(form.report_id) or 0)
            key = "res.flash.recognised"
        else:
            reason = form.reason.strip() or None
            informed = True if form.informed == "1" else (False if reason == "emergency" else None)
            repeat = ordering.RepeatIn(reason, informed, form.text.strip() or None)
            ordering.record_decision(session, actor, decision_id=decision_id, override=repeat)
            key = "res.flash.repeated"
    except HealthGridError as exc:
        return _decision(request, session, actor, decision_id, error=error_view(request, exc),
                         form=form.model_dump())
    return NOTICES.redirect(request, f"/results/order/{decision_id}", m=key)


# -- the measures page ------------------------------------------------------------------------------

@measure_pages.get("/results/measures", response_class=HTMLResponse)
def measures_page(request: Request, session: SessionDep, actor: ActorDep, division: Param = "", org: Param = "",
                  start: Param = "", end: Param = "") -> HTMLResponse:
    today = datetime.now(CN_TZ).date()
    first, last, bad_month = _period(start, end, today)
    choices = measures.stats_divisions(session, actor)
    own = measures.stats_facilities(actor)
    chosen = next((c.id for c in choices if str(c.id) == division), choices[0].id if choices else None)
    result, error = None, None
    if chosen is not None or own:
        try:
            result = measures.recognition_measures(session, actor, division_id=chosen,
                                                   org_ids=None if chosen is not None else own,
                                                   since=first, until=_add_months(last, 1) - timedelta(days=1))
        except HealthGridError as exc:
            error = error_view(request, exc)
    facility = next((f for f in result.facilities if str(f.org_id) == org), None) if result else None
    if result and facility is None and len(result.facilities) == 1 and chosen is None:
        facility = result.facilities[0]
    rows = [r for r in result.rows if r.org_id == facility.org_id] if facility else []
    chart = _chart(rows if facility else (result.monthly if result else []))
    return _render(request, "results/measures.html", error.status if error else 200, choices=choices, chosen=chosen,
                   own=own, start=f"{first:%Y-%m}", end=f"{last:%Y-%m}", bad_month=bad_month,
                   month_options=[f"{_add_months(today.replace(day=1), -k):%Y-%m}" for k in range(measures.MAX_MONTHS)],
                   m=result, facility=facility, facility_rows=rows, chart=chart, error=error)


def _period(start: str, end: str, today: date) -> tuple[date, date, bool]:
    """The first days of the first and last months; by default the last twelve months."""
    last, first = _month(end), _month(start)
    bad = (bool(end) and last is None) or (bool(start) and first is None)
    last = last or today.replace(day=1)
    first = first or _add_months(last, -11)
    return (last, first, bad) if first > last else (first, last, bad)


def _month(value: str) -> date | None:
    try:
        found = datetime.strptime(value.strip(), "%Y-%m").date() if value.strip() else None
    except ValueError:
        return None
    return found if found is None or 2000 <= found.year <= 2099 else None


def _add_months(first: date, n: int) -> date:
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 1000, 240, 48, 28, 22


def _chart(rows: list[measures.MeasureRow]) -> dict | None:
    """Two bars a month: orders recognised (repeats avoided) and repeated with a reason."""
    if not rows:
        return None
    top = _nice(max(max(r.recognised, r.repeat_with_reason) for r in rows))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group = plot_w / len(rows)
    bar = max(2.0, min(22.0, group * 0.36))
    bars, labels = [], []
    for i, r in enumerate(rows):
        x = LEFT + i * group + group / 2
        for kind, value, dx in (("recognised", r.recognised, -bar - 1), ("repeated", r.repeat_with_reason, 1)):
            h = plot_h * value / top
            bars.append({"kind": kind, "x": round(x + dx, 1), "y": round(TOP + plot_h - h, 1), "w": round(bar, 1),
                         "h": round(h, 1), "value": value, "month": r.month})
        labels.append({"x": round(x, 1), "text": r.month[5:] if r.month[5:] != "01" and i else r.month[2:]})
    ticks = [{"y": round(TOP + plot_h - plot_h * k / 4, 1), "value": top * k // 4} for k in range(5)]
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - 8, "base": TOP + plot_h,
            "label_y": HEIGHT - 8, "bars": bars, "labels": labels, "ticks": ticks}


def _nice(value: int) -> int:
    """A round axis maximum at or above ``value``, divisible by 4."""
    if value <= 4:
        return 4
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step * 4 >= value:
                return m * step * 4
        step *= 10


router.include_router(order_pages)
router.include_router(measure_pages)
