"""The patient's results page (``/patients/{id}/results``): reports from every facility by
report day and facility, each with its values, units, reference ranges and flags (↑ ↓), the
images with a preview and "查看影像", and the trend charts (server-rendered SVG, the reference
range as a band, a facility per marker). Also the images' two routes — the preview, fetched
from the PACS through the platform, and the audited hand-over to the PACS's viewer — and the
pages' stylesheet.

What the page shows is the service's decision (``results.timeline``: relationship, scope,
break-the-glass; audited). A clinician without a relationship is asked for a reason and the
same read is then repeated with the glass broken, for that one page, as on the patient's
record page.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ...errors import Forbidden, Invalid, NotFound
from ...http import SessionDep
from ...security.domain import Actor, Perm
from ...security.http import ActorDep
from ...web import add_messages, page_language
from ...web import render as render_page
from ...web.i18n import MESSAGES as CATALOGUE
from .. import imaging, timeline
from ..charts import facility_styles, trend_chart
from ..domain import CN_TZ
from ..trends import HIGH, LOW
from ..web_messages_timeline import MESSAGES

router = APIRouter(include_in_schema=False)
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
STATIC = Path(__file__).parent.parent / "static"
ASSETS = {"timeline.css": "text/css; charset=utf-8"}
CATEGORIES = ("LAB", "RAD", "EC", "PAT")


@dataclass(frozen=True)
class Labels:
    """Codes as text in the page's language."""

    lang: str

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def flag(self, flag: str | None) -> str:
        key = f"res.tl.flag.{flag}"
        return self.msg(key) if flag and key in CATALOGUE else (flag or "")

    def arrow(self, flag: str | None) -> str:
        return "↑" if flag in HIGH else "↓" if flag in LOW else "!" if flag in ("A", "AA") else ""

    def direction(self, flag: str | None) -> str:
        return "high" if flag in HIGH else "low" if flag in LOW else "abnormal" if flag in ("A", "AA") else "normal"

    def status(self, status: str) -> str | None:
        key = f"res.tl.status.{status}"
        return self.msg(key) if key in CATALOGUE else None

    def range(self, low: float | None, high: float | None, text: str | None) -> str:
        if text:
            return text
        if low is not None and high is not None:
            return f"{low:g}–{high:g}"
        return f"< {high:g}" if high is not None else f"> {low:g}" if low is not None else ""

    def value(self, num: float | None, text: str | None) -> str:
        return f"{num:g}" if num is not None else (text or "—")


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _filters(since: str, until: str, category: str) -> tuple[datetime | None, datetime | None, list[str] | None, bool]:
    start, end = _day(since), _day(until)
    bad = bool((since and start is None) or (until and end is None) or (category and category not in CATEGORIES))
    return (datetime.combine(start, time(), CN_TZ) if start else None,
            datetime.combine(end + timedelta(days=1), time(), CN_TZ) if end else None,
            [category] if category in CATEGORIES else None, bad)


def _page(request: Request, session: Session, actor: Actor, patient_id: int, *, glass: str | None = None
          ) -> HTMLResponse:
    q = request.query_params
    since, until, category = q.get("since", ""), q.get("until", ""), q.get("category", "")
    start, end, cats, bad = _filters(since, until, category)
    lang = page_language(request)
    error, found = None, None
    try:
        found = timeline.patient_results(session, actor, patient_id, since=start, until=end, categories=cats,
                                         trend=(q.get("trend") or None))
    except Invalid as exc:
        error = exc
    zone = request.app.state.web.zone
    styles = facility_styles(found.trends) if found else {}
    charts = [(t, trend_chart(t, zone=zone, lang=lang, styles=styles)) for t in found.trends] if found else []
    return render_page(request, "results/timeline.html", {
        "tl": found, "charts": charts, "patient_id": patient_id, "L": Labels(lang), "glass": glass,
        "error": error, "bad_input": bad, "since": since, "until": until, "category": category,
        "categories": CATEGORIES, "masked": not actor.can(Perm.PII_UNMASKED),
    }, status_code=422 if error else 200)


def _glass_form(request: Request, patient_id: int, error: str | None, status: int) -> HTMLResponse:
    state = getattr(request.state, "web_session", None)
    return render_page(request, "results/timeline_glass.html", {
        "patient_id": patient_id, "error": error, "csrf": state.csrf_token if state else "",
        "minimum": request.app.state.settings.security.break_glass_min_reason}, status_code=status)


@router.get("/patients/{patient_id}/results", response_class=HTMLResponse)
def results_page(request: Request, session: SessionDep, actor: ActorDep, patient_id: RowId) -> HTMLResponse:
    try:
        return _page(request, session, actor, patient_id)
    except Forbidden as exc:
        if exc.code != "SEC-104" or not actor.can(Perm.BREAK_GLASS):
            raise
        return _glass_form(request, patient_id, None, exc.status)


@router.post("/patients/{patient_id}/results/break-glass", response_class=HTMLResponse)
def break_glass(request: Request, session: SessionDep, actor: ActorDep, patient_id: RowId,
                reason: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    """The same read with the glass broken: allowed by access.check, audited and flagged."""
    glass = dataclasses.replace(actor, break_glass=" ".join(reason.split()))
    try:
        return _page(request, session, glass, patient_id, glass=glass.break_glass)
    except Forbidden as exc:
        if exc.code not in ("SEC-104", "SEC-105") or not actor.can(Perm.BREAK_GLASS):
            raise
        minimum = request.app.state.settings.security.break_glass_min_reason
        text = CATALOGUE.get("res.tl.glass.too_short", page_language(request), n=minimum)
        return _glass_form(request, patient_id, text if exc.code == "SEC-105" else exc.message, exc.status)


@router.get("/results/imaging/{study_id}/preview")
def study_preview(session: SessionDep, actor: ActorDep, study_id: RowId) -> Response:
    """The study's first frame rendered by the PACS, through the platform (checked, audited)."""
    body, media = imaging.preview(session, actor, study_id)
    return Response(body, media_type=media, headers={"Cache-Control": "private, no-store"})


@router.get("/results/imaging/{study_id}/viewer")
def study_viewer(session: SessionDep, actor: ActorDep, study_id: RowId) -> Response:
    """Checked and audited, then on to the PACS's viewer (the browser reaches the PACS on the
    intranet); a PACS without a known viewer gets the rendered preview instead."""
    _, url = imaging.study_for_viewing(session, actor, study_id)
    return RedirectResponse(url or f"/results/imaging/{study_id}/preview", status_code=303)


@router.get("/results/timeline/assets/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("HG-404", f"no asset {name!r}")
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name],
                    headers={"Cache-Control": "public, max-age=3600"})


add_messages(MESSAGES)
